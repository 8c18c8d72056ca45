//! The `:` command line: the etcdctl commands a learner knows and the lab's own commands,
//! named as on raftty's command line, with a history (up and down) and tab completion.

use std::time::Duration;

use anyhow::Context;
use anyhow::Result;
use crossterm::event::KeyCode;
use crossterm::event::KeyEvent;
use crossterm::event::KeyModifiers;

use crate::lab::Tempo;
use crate::lab::faults::Slowness;
use crate::lab::faults::parse_partition;
use crate::tui::app::Effect;
use crate::tui::app::LabOp;
use crate::tui::app::Tab;
use crate::tui::tabs::backups::BackupOp;
use crate::tui::tabs::lessons::LessonOp;
use crate::tui::theme::ThemeName;

/// Requests on the etcd API, as etcdctl would send them.
#[derive(Debug, Clone, PartialEq)]
pub enum EtcdOp {
    Put {
        key: String,
        value: String,
    },
    Get {
        key: String,
        prefix: bool,
        revision: i64,
        keys_only: bool,
    },
    Del {
        key: String,
        prefix: bool,
    },
    Txn(Txn),
    Compact {
        revision: i64,
    },
    MemberList,
    EndpointStatus,
    Watch {
        key: String,
        prefix: bool,
        revision: i64,
    },
    WatchOff,
    /// `snapshot status FILE`: what a snapshot file holds.
    SnapshotStatus {
        file: String,
    },
    /// etcdctl's `auth`, `user` and `role` commands.
    Auth(AuthCommand),
}

/// The auth commands the line knows, worded as etcdctl's.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthCommand {
    Enable,
    Disable,
    UserAdd {
        name: String,
        password: Option<String>,
    },
    UserGrantRole {
        user: String,
        role: String,
    },
    UserList,
    RoleAdd {
        name: String,
    },
    /// `role grant-permission ROLE read|write|readwrite KEY [RANGE_END] [--prefix]`
    RoleGrantPermission {
        role: String,
        permission: String,
        key: String,
        range_end: String,
    },
    RoleList,
}

/// `txn <compare> [&& <compare>...] then <op>[; <op>...] [else <op>[; <op>...]]`
#[derive(Debug, Clone, PartialEq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub success: Vec<TxnOp>,
    pub failure: Vec<TxnOp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Compare {
    /// value, version, create or mod
    pub target: String,
    pub key: String,
    /// =, !=, < or >
    pub op: String,
    pub operand: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TxnOp {
    Put { key: String, value: String },
    Get { key: String },
    Del { key: String },
}

pub enum Parsed {
    Effect(Effect),
    Quit,
    Help,
    Theme(ThemeName),
    Tab(Tab),
}

/// Every command the line knows, for completion and help.
pub const COMMANDS: &[&str] = &[
    "put",
    "get",
    "del",
    "watch",
    "txn",
    "compact",
    "member list",
    "member add",
    "member remove",
    "endpoint status",
    "snapshot save",
    "snapshot status",
    "auth enable",
    "auth disable",
    "user add",
    "user grant-role",
    "user list",
    "role add",
    "role grant-permission",
    "role list",
    "restore",
    "backup",
    "backup stop",
    "recover",
    "kill",
    "stop",
    "pause",
    "resume",
    "start",
    "isolate",
    "partition",
    "cut",
    "slow",
    "heal",
    "tempo",
    "step on",
    "step off",
    "step deliver",
    "step drop",
    "load",
    "theme",
    "lesson",
    "lesson stop",
    "hint",
    "solution",
    "reset",
    "reset lesson",
    "help",
    "quit",
];

/// Commands whose next word is a member's name.
const TAKES_MEMBER: &[&str] =
    &["kill", "stop", "pause", "resume", "start", "isolate", "slow", "cut", "member remove", "recover"];
/// Commands whose next word is a key.
const TAKES_KEY: &[&str] = &["put", "get", "del", "watch"];

/// Splits like a shell: spaces separate words, quotes ('' or "") keep them together.
pub fn words(line: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    anyhow::ensure!(quote.is_none(), "a quote is not closed");
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

fn flag(args: &mut Vec<String>, name: &str) -> bool {
    let before = args.len();
    args.retain(|a| a != name);
    args.len() != before
}

fn option(args: &mut Vec<String>, name: &str) -> Result<Option<String>> {
    let prefix = format!("{name}=");
    if let Some(i) = args.iter().position(|a| a.starts_with(&prefix)) {
        return Ok(Some(args.remove(i)[prefix.len()..].to_string()));
    }
    if let Some(i) = args.iter().position(|a| a == name) {
        anyhow::ensure!(i + 1 < args.len(), "{name} needs a value");
        args.remove(i);
        return Ok(Some(args.remove(i)));
    }
    Ok(None)
}

fn one(args: &[String], usage: &str) -> Result<String> {
    match args {
        [one] => Ok(one.clone()),
        _ => anyhow::bail!("usage: {usage}"),
    }
}

pub fn parse(line: &str) -> Result<Parsed> {
    let mut args = words(line)?;
    anyhow::ensure!(!args.is_empty(), "type a command; `help` lists them");
    let cmd = args.remove(0);
    let lab = |op: LabOp| Ok(Parsed::Effect(Effect::Lab(op)));
    let lesson = |op: LessonOp| Ok(Parsed::Effect(Effect::Lesson(op)));
    let etcd = |op: EtcdOp| Ok(Parsed::Effect(Effect::Etcd(op)));
    let backup = |op: BackupOp| Ok(Parsed::Effect(Effect::Backup(op)));
    match cmd.as_str() {
        "put" => match args.as_slice() {
            [key, value] => etcd(EtcdOp::Put { key: key.clone(), value: value.clone() }),
            _ => anyhow::bail!("usage: put KEY VALUE (quote a value with spaces)"),
        },
        "get" => {
            let prefix = flag(&mut args, "--prefix");
            let keys_only = flag(&mut args, "--keys-only");
            let revision = match option(&mut args, "--rev")? {
                Some(r) => r.parse().with_context(|| format!("--rev takes a revision number, not {r:?}"))?,
                None => 0,
            };
            let key = one(&args, "get KEY [--prefix] [--rev N] [--keys-only]")?;
            etcd(EtcdOp::Get { key, prefix, revision, keys_only })
        }
        "del" => {
            let prefix = flag(&mut args, "--prefix");
            etcd(EtcdOp::Del { key: one(&args, "del KEY [--prefix]")?, prefix })
        }
        "watch" => {
            if args.first().map(String::as_str) == Some("off") {
                return etcd(EtcdOp::WatchOff);
            }
            let prefix = flag(&mut args, "--prefix");
            let revision = match option(&mut args, "--rev")? {
                Some(r) => r.parse().with_context(|| format!("--rev takes a revision number, not {r:?}"))?,
                None => 0,
            };
            etcd(EtcdOp::Watch { key: one(&args, "watch KEY [--prefix] [--rev N]")?, prefix, revision })
        }
        "txn" => etcd(EtcdOp::Txn(parse_txn(&args)?)),
        "compact" => {
            let r = one(&args, "compact REVISION")?;
            etcd(EtcdOp::Compact { revision: r.parse().with_context(|| format!("not a revision: {r:?}"))? })
        }
        "member" => match args.first().map(String::as_str) {
            Some("list") => etcd(EtcdOp::MemberList),
            Some("add") => lab(LabOp::MemberAdd),
            Some("remove") => lab(LabOp::MemberRemove(one(&args[1..], "member remove NAME")?)),
            _ => anyhow::bail!("usage: member list | member add | member remove NAME"),
        },
        "snapshot" => match args.as_slice() {
            [what] if what == "save" => backup(BackupOp::SnapshotSave { file: None }),
            [what, file] if what == "save" => backup(BackupOp::SnapshotSave { file: Some(file.clone()) }),
            [what, file] if what == "status" => etcd(EtcdOp::SnapshotStatus { file: file.clone() }),
            _ => anyhow::bail!("usage: snapshot save [FILE] | snapshot status FILE"),
        },
        "auth" => match args.first().map(String::as_str) {
            Some("enable") => etcd(EtcdOp::Auth(AuthCommand::Enable)),
            Some("disable") => etcd(EtcdOp::Auth(AuthCommand::Disable)),
            _ => anyhow::bail!("usage: auth enable | auth disable"),
        },
        "user" => match args.as_slice() {
            [what, spec] if what == "add" => {
                let (name, password) = match spec.split_once(':') {
                    Some((n, p)) => (n.to_string(), Some(p.to_string())),
                    None => (spec.clone(), None),
                };
                etcd(EtcdOp::Auth(AuthCommand::UserAdd { name, password }))
            }
            [what, user, role] if what == "grant-role" => {
                etcd(EtcdOp::Auth(AuthCommand::UserGrantRole { user: user.clone(), role: role.clone() }))
            }
            [what] if what == "list" => etcd(EtcdOp::Auth(AuthCommand::UserList)),
            _ => anyhow::bail!("usage: user add NAME[:PASSWORD] | user grant-role USER ROLE | user list"),
        },
        "role" => {
            let prefix = flag(&mut args, "--prefix") || flag(&mut args, "--prefix=true");
            match args.as_slice() {
                [what, name] if what == "add" => etcd(EtcdOp::Auth(AuthCommand::RoleAdd { name: name.clone() })),
                [what] if what == "list" => etcd(EtcdOp::Auth(AuthCommand::RoleList)),
                [what, role, permission, key, rest @ ..] if what == "grant-permission" && rest.len() <= 1 => {
                    anyhow::ensure!(
                        ["read", "write", "readwrite"].contains(&permission.as_str()),
                        "the permission is read, write or readwrite, not {permission:?}"
                    );
                    let range_end = match (rest.first(), prefix) {
                        (Some(end), false) => end.clone(),
                        (None, true) => {
                            String::from_utf8_lossy(&crate::tui::io::prefix_end(key.as_bytes())).into_owned()
                        }
                        (None, false) => String::new(),
                        (Some(_), true) => anyhow::bail!("give either RANGE_END or --prefix, not both"),
                    };
                    etcd(EtcdOp::Auth(AuthCommand::RoleGrantPermission {
                        role: role.clone(),
                        permission: permission.clone(),
                        key: key.clone(),
                        range_end,
                    }))
                }
                _ => anyhow::bail!(
                    "usage: role add NAME | role grant-permission ROLE read|write|readwrite KEY [RANGE_END] [--prefix] | role list"
                ),
            }
        }
        "restore" => {
            let usage = "usage: restore FILE|DIR [--to-revision R]";
            let (source, to_revision) = match args.as_slice() {
                [source] => (source.clone(), None),
                [source, flag, r] | [flag, r, source] if flag == "--to-revision" => {
                    (source.clone(), Some(r.parse().with_context(|| format!("not a revision: {r:?}"))?))
                }
                _ => anyhow::bail!(usage),
            };
            anyhow::ensure!(!source.starts_with("--"), usage);
            backup(BackupOp::Restore { source, to_revision })
        }
        "backup" => match args.as_slice() {
            [] => backup(BackupOp::BackupStart { dir: None }),
            [what] if what == "stop" => backup(BackupOp::BackupStop),
            [dir] => backup(BackupOp::BackupStart { dir: Some(dir.clone()) }),
            _ => anyhow::bail!("usage: backup [DIR] | backup stop"),
        },
        "recover" => match args.as_slice() {
            [member] => backup(BackupOp::Recover { member: member.clone(), force: false }),
            [member, flag] | [flag, member] if flag == "--force" => {
                backup(BackupOp::Recover { member: member.clone(), force: true })
            }
            _ => anyhow::bail!("usage: recover NAME [--force]"),
        },
        "endpoint" => match args.first().map(String::as_str) {
            Some("status") | Some("health") => etcd(EtcdOp::EndpointStatus),
            _ => anyhow::bail!("usage: endpoint status"),
        },
        "kill" => lab(LabOp::Kill(one(&args, "kill NAME")?)),
        "stop" => lab(LabOp::Stop(one(&args, "stop NAME")?)),
        "pause" => lab(LabOp::Pause(one(&args, "pause NAME")?)),
        "resume" => lab(LabOp::Resume(one(&args, "resume NAME")?)),
        "start" => lab(LabOp::Start(one(&args, "start NAME")?)),
        "isolate" => lab(LabOp::Isolate(one(&args, "isolate NAME")?)),
        "partition" => {
            anyhow::ensure!(!args.is_empty(), "usage: partition n1|n2,n3");
            lab(LabOp::Partition(parse_partition(&args.join(""))?))
        }
        "cut" => match args.as_slice() {
            [a, b] if a != b => lab(LabOp::Cut(a.clone(), b.clone())),
            [_, _] => anyhow::bail!("a member always reaches itself"),
            _ => anyhow::bail!("usage: cut FROM TO (loses FROM's messages to TO)"),
        },
        "slow" => {
            let jitter = option(&mut args, "--jitter")?;
            let loss = option(&mut args, "--loss")?;
            let (name, delay) = match args.as_slice() {
                [name] => (name.clone(), "200ms".to_string()),
                [name, delay] => (name.clone(), delay.clone()),
                _ => anyhow::bail!("usage: slow NAME [DELAY] [--jitter D] [--loss P%]"),
            };
            let ms = |d: &str| -> Result<u32> {
                let d = humantime::parse_duration(d).with_context(|| format!("not a duration: {d:?} (try 200ms)"))?;
                Ok(d.as_millis().try_into().unwrap_or(u32::MAX))
            };
            let slowness = Slowness {
                delay_ms: ms(&delay)?,
                jitter_ms: jitter.as_deref().map(ms).transpose()?.unwrap_or(0),
                loss_percent: loss.as_deref().map(crate::lab::faults::parse_percent).transpose()?.unwrap_or(0.0),
            };
            lab(LabOp::Slow(name, slowness))
        }
        "heal" => lab(LabOp::Heal),
        "step" => parse_step(&args),
        "tempo" => lab(LabOp::Tempo(Tempo::parse(&one(&args, "tempo etcd|slow|HEARTBEAT/ELECTION")?)?)),
        "load" => match args.first().map(String::as_str) {
            Some("off") | Some("0") => Ok(Parsed::Effect(Effect::Load(None))),
            Some(rate) => {
                let rate: u32 = rate.parse().with_context(|| format!("load takes puts per second, not {rate:?}"))?;
                anyhow::ensure!((1..=20_000).contains(&rate), "load runs at 1 to 20000 puts per second");
                Ok(Parsed::Effect(Effect::Load(Some(rate))))
            }
            None => anyhow::bail!("usage: load PUTS_PER_SECOND | load off"),
        },
        "theme" => {
            let name = one(&args, "theme dark|light|mono")?;
            Ok(Parsed::Theme(ThemeName::parse(&name).with_context(|| format!("no theme {name:?}: dark, light, mono"))?))
        }
        "lesson" => match args.first().map(String::as_str) {
            None => Ok(Parsed::Tab(Tab::Lessons)),
            Some("stop") | Some("leave") => lesson(LessonOp::Stop),
            Some(id) => lesson(LessonOp::Start(id.to_string())),
        },
        "hint" => lesson(LessonOp::Hint),
        "solution" => lesson(LessonOp::Solution),
        "reset" => match args.first().map(String::as_str) {
            None | Some("step") => lesson(LessonOp::ResetStep),
            Some("lesson") => lesson(LessonOp::ResetLesson),
            Some(other) => anyhow::bail!("reset takes `step` or `lesson`, not {other:?}"),
        },
        "help" | "h" => Ok(Parsed::Help),
        "quit" | "q" | "exit" => Ok(Parsed::Quit),
        "cluster" => Ok(Parsed::Tab(Tab::Cluster)),
        "keys" => Ok(Parsed::Tab(Tab::Keys)),
        "log" => Ok(Parsed::Tab(Tab::RaftLog)),
        "events" => Ok(Parsed::Tab(Tab::Events)),
        "metrics" => Ok(Parsed::Tab(Tab::Metrics)),
        "lessons" => Ok(Parsed::Tab(Tab::Lessons)),
        "messages" => Ok(Parsed::Tab(Tab::Messages)),
        "etcdctl" => parse(&args.join(" ")),
        other => anyhow::bail!("unknown command {other:?}; `help` lists them"),
    }
}

/// `step on [--auto-heartbeats]`, `step off`, `step deliver|drop ID... | --all | --from A --to B`.
fn parse_step(args: &[String]) -> Result<Parsed> {
    use crate::lab::faults::StepSettings;
    use crate::lab::step::Selection;
    let usage =
        "usage: step on [--auto-heartbeats] | step off | step deliver|drop ID... | --all | --from A --to B --kind K";
    let lab = |op| Ok(Parsed::Effect(Effect::Lab(op)));
    let Some((what, rest)) = args.split_first() else { anyhow::bail!(usage) };
    let selection = |rest: &[String]| -> Result<Selection> {
        let (mut from, mut to, mut ids, mut all, mut kinds) = (None, None, Vec::new(), false, None);
        let mut words = rest.iter();
        while let Some(w) = words.next() {
            match w.as_str() {
                "--all" => all = true,
                "--from" => from = Some(words.next().context("--from takes a member's name")?.clone()),
                "--to" => to = Some(words.next().context("--to takes a member's name")?.clone()),
                "--kind" => {
                    kinds = Some(crate::lab::step::parse_kinds(words.next().context("--kind takes kinds of message")?)?)
                }
                id if !id.starts_with("--") => ids.push(id.to_string()),
                other => anyhow::bail!("unknown option {other:?}; {usage}"),
            }
        }
        let matching = from.is_some() || to.is_some() || kinds.is_some();
        Ok(match (all, matching, ids.is_empty()) {
            (true, false, true) => Selection::All,
            (false, true, true) => Selection::Matching { from, to, kinds: kinds.unwrap_or_default() },
            (false, false, false) => Selection::Ids(ids),
            _ => anyhow::bail!("name message ids, or --all, or --from/--to; {usage}"),
        })
    };
    match what.as_str() {
        "on" => match rest {
            [] => lab(LabOp::Step(Some(StepSettings { auto_heartbeats: false }))),
            [flag] if flag == "--auto-heartbeats" => lab(LabOp::Step(Some(StepSettings { auto_heartbeats: true }))),
            _ => anyhow::bail!(usage),
        },
        "off" => lab(LabOp::Step(None)),
        "deliver" => lab(LabOp::Deliver(selection(rest)?)),
        "drop" => lab(LabOp::DropMessages(selection(rest)?)),
        "list" => Ok(Parsed::Tab(Tab::Messages)),
        _ => anyhow::bail!(usage),
    }
}

fn parse_txn(args: &[String]) -> Result<Txn> {
    let usage = "usage: txn 'value(\"k\") = \"v\"' then put k v2 [else get k] (ops separated by ;)";
    let text = args.join(" ");
    let (compares, rest) = text.split_once(" then ").with_context(|| usage.to_string())?;
    let (success, failure) = match rest.split_once(" else ") {
        Some((s, f)) => (s, Some(f)),
        None => (rest, None),
    };
    let compares = compares.split("&&").map(|c| parse_compare(c.trim())).collect::<Result<Vec<_>>>().context(usage)?;
    let ops = |s: &str| -> Result<Vec<TxnOp>> {
        s.split(';').map(str::trim).filter(|o| !o.is_empty()).map(parse_txn_op).collect()
    };
    Ok(Txn { compares, success: ops(success)?, failure: failure.map(ops).transpose()?.unwrap_or_default() })
}

fn parse_compare(c: &str) -> Result<Compare> {
    // value("k") = "v"   mod("k") > 3
    let open = c.find('(').context("a compare looks like value(\"k\") = \"v\"")?;
    let close = c.find(')').context("a compare looks like value(\"k\") = \"v\"")?;
    let target = c[..open].trim().to_string();
    anyhow::ensure!(
        ["value", "version", "create", "mod"].contains(&target.as_str()),
        "compare on value, version, create or mod, not {target:?}"
    );
    let key = c[open + 1..close].trim().trim_matches('"').to_string();
    let rest = c[close + 1..].trim();
    let op = ["!=", "=", "<", ">"].into_iter().find(|op| rest.starts_with(op)).context("compare with =, !=, < or >")?;
    let operand = rest[op.len()..].trim().trim_matches('"').to_string();
    Ok(Compare { target, key, op: op.to_string(), operand })
}

fn parse_txn_op(op: &str) -> Result<TxnOp> {
    let w = words(op)?;
    match w.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["put", k, v] => Ok(TxnOp::Put { key: k.to_string(), value: v.to_string() }),
        ["get", k] => Ok(TxnOp::Get { key: k.to_string() }),
        ["del", k] => Ok(TxnOp::Del { key: k.to_string() }),
        _ => anyhow::bail!("a txn op is `put K V`, `get K` or `del K`, not {op:?}"),
    }
}

/// The text being typed, with its cursor, history and completion.
#[derive(Debug, Default)]
pub struct CommandLine {
    input: String,
    /// Byte position of the cursor in `input`.
    cursor: usize,
    history: Vec<String>,
    /// Where up/down is in the history; None when editing a new line.
    browsing: Option<usize>,
    /// The candidates of the last tab press, shown under the line.
    pub candidates: Vec<String>,
}

impl CommandLine {
    pub fn text(&self) -> &str {
        &self.input
    }

    pub fn cursor(&self) -> usize {
        self.input[..self.cursor].chars().count()
    }

    pub fn clear(&mut self) {
        self.input.clear();
        self.cursor = 0;
        self.browsing = None;
        self.candidates.clear();
    }

    pub fn set(&mut self, text: &str) {
        self.input = text.to_string();
        self.cursor = self.input.len();
        self.candidates.clear();
    }

    /// Takes the line, remembering it in the history.
    pub fn submit(&mut self) -> String {
        let line = std::mem::take(&mut self.input);
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            self.history.push(line.clone());
        }
        self.clear();
        line
    }

    pub fn history(&self) -> &[String] {
        &self.history
    }

    pub fn edit(&mut self, key: KeyEvent) {
        self.candidates.clear();
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('u') if ctrl => {
                self.input.drain(..self.cursor);
                self.cursor = 0;
            }
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = self.input.len(),
            KeyCode::Char('w') if ctrl => {
                let before = self.input[..self.cursor].trim_end();
                let start = before.rfind(' ').map_or(0, |i| i + 1);
                self.input.drain(start..self.cursor);
                self.cursor = start;
            }
            KeyCode::Char(c) => {
                self.input.insert(self.cursor, c);
                self.cursor += c.len_utf8();
            }
            KeyCode::Backspace => {
                if let Some((i, _)) = self.input[..self.cursor].char_indices().next_back() {
                    self.input.remove(i);
                    self.cursor = i;
                }
            }
            KeyCode::Delete if self.cursor < self.input.len() => {
                self.input.remove(self.cursor);
            }
            KeyCode::Left => {
                if let Some((i, _)) = self.input[..self.cursor].char_indices().next_back() {
                    self.cursor = i;
                }
            }
            KeyCode::Right => {
                if let Some(c) = self.input[self.cursor..].chars().next() {
                    self.cursor += c.len_utf8();
                }
            }
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.input.len(),
            KeyCode::Up => {
                if self.history.is_empty() {
                    return;
                }
                let at = match self.browsing {
                    None => self.history.len() - 1,
                    Some(i) => i.saturating_sub(1),
                };
                self.browsing = Some(at);
                self.input = self.history[at].clone();
                self.cursor = self.input.len();
            }
            KeyCode::Down => match self.browsing {
                Some(i) if i + 1 < self.history.len() => {
                    self.browsing = Some(i + 1);
                    self.input = self.history[i + 1].clone();
                    self.cursor = self.input.len();
                }
                Some(_) => {
                    self.browsing = None;
                    self.input.clear();
                    self.cursor = 0;
                }
                None => {}
            },
            _ => {}
        }
    }

    /// Completes the word before the cursor: a command, a member's name or a key.
    pub fn complete(&mut self, members: &[String], keys: &[String]) {
        let before = &self.input[..self.cursor];
        let done_words: Vec<&str> = before.split_whitespace().collect();
        let partial =
            if before.ends_with(' ') || before.is_empty() { "" } else { done_words.last().copied().unwrap_or("") };
        let head = before[..before.len() - partial.len()].trim_end();
        let candidates: Vec<String> = if head.is_empty() {
            COMMANDS.iter().map(|c| c.to_string()).collect()
        } else if ["member", "endpoint", "snapshot", "backup", "auth", "user", "role"].contains(&head) {
            COMMANDS.iter().filter_map(|c| c.strip_prefix(&format!("{head} "))).map(str::to_string).collect()
        } else if TAKES_MEMBER.contains(&head)
            || head == "partition"
            || (head.starts_with("cut ") && head.split_whitespace().count() == 2)
        {
            members.to_vec()
        } else if TAKES_KEY.contains(&head) {
            keys.to_vec()
        } else if head == "tempo" {
            vec!["etcd".into(), "slow".into()]
        } else if head == "theme" {
            vec!["dark".into(), "light".into(), "mono".into()]
        } else if head == "load" {
            vec!["100".into(), "200".into(), "off".into()]
        } else {
            vec![]
        };
        let matching: Vec<String> = candidates.into_iter().filter(|c| c.starts_with(partial)).collect();
        let Some(first) = matching.first() else { return };
        let common = matching.iter().fold(first.clone(), |acc, c| {
            acc.chars().zip(c.chars()).take_while(|(a, b)| a == b).map(|(a, _)| a).collect()
        });
        let mut completed = common;
        if matching.len() == 1 && !completed.ends_with('/') {
            completed.push(' ');
        }
        let start = self.cursor - partial.len();
        self.input.replace_range(start..self.cursor, &completed);
        self.cursor = start + completed.len();
        if matching.len() > 1 {
            self.candidates = matching.into_iter().take(12).collect();
        }
    }
}

/// How long a command may take before the app gives up on it (membership and tempo
/// changes take longest: they wait for members to catch up or restart).
pub fn timeout_of(effect: &Effect) -> Duration {
    match effect {
        Effect::Lab(LabOp::MemberAdd) | Effect::Lab(LabOp::Tempo(_)) => Duration::from_secs(120),
        // Restores and recoveries report their progress while they go; a big one takes long.
        Effect::Backup(_) => Duration::from_secs(3600),
        _ => Duration::from_secs(15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effect(line: &str) -> Effect {
        match parse(line) {
            Ok(Parsed::Effect(e)) => e,
            Ok(_) => panic!("{line} is not an effect"),
            Err(e) => panic!("{line}: {e}"),
        }
    }

    #[test]
    fn etcdctl_commands_parse_as_etcdctl_reads_them() {
        assert_eq!(
            effect("put /a 'hello world'"),
            Effect::Etcd(EtcdOp::Put { key: "/a".into(), value: "hello world".into() })
        );
        assert_eq!(
            effect("get /registry/ --prefix --rev 5"),
            Effect::Etcd(EtcdOp::Get { key: "/registry/".into(), prefix: true, revision: 5, keys_only: false })
        );
        assert_eq!(effect("etcdctl del /a --prefix"), Effect::Etcd(EtcdOp::Del { key: "/a".into(), prefix: true }));
        assert_eq!(effect("member list"), Effect::Etcd(EtcdOp::MemberList));
        assert_eq!(effect("endpoint status"), Effect::Etcd(EtcdOp::EndpointStatus));
        assert_eq!(effect("snapshot save b.db"), Effect::Backup(BackupOp::SnapshotSave { file: Some("b.db".into()) }));
        assert_eq!(effect("snapshot save"), Effect::Backup(BackupOp::SnapshotSave { file: None }));
        assert_eq!(
            effect("restore /b/full.db --to-revision 42"),
            Effect::Backup(BackupOp::Restore { source: "/b/full.db".into(), to_revision: Some(42) })
        );
        assert_eq!(
            effect("restore b.db"),
            Effect::Backup(BackupOp::Restore { source: "b.db".into(), to_revision: None })
        );
        assert!(parse("restore b.db --to-revision soon").is_err());
        assert_eq!(effect("backup"), Effect::Backup(BackupOp::BackupStart { dir: None }));
        assert_eq!(
            effect("user add alice:pw"),
            Effect::Etcd(EtcdOp::Auth(AuthCommand::UserAdd { name: "alice".into(), password: Some("pw".into()) }))
        );
        assert_eq!(
            effect("role grant-permission reader read /app/ --prefix"),
            Effect::Etcd(EtcdOp::Auth(AuthCommand::RoleGrantPermission {
                role: "reader".into(),
                permission: "read".into(),
                key: "/app/".into(),
                range_end: "/app0".into(),
            }))
        );
        assert!(parse("role grant-permission reader all /app/").is_err());
        assert_eq!(effect("backup stop"), Effect::Backup(BackupOp::BackupStop));
        assert_eq!(
            effect("recover n2 --force"),
            Effect::Backup(BackupOp::Recover { member: "n2".into(), force: true })
        );
        let Effect::Etcd(EtcdOp::Txn(txn)) = effect(r#"txn value("k") = "v" then put k v2; get k else get k"#) else {
            panic!("not a txn")
        };
        assert_eq!(
            txn.compares[0],
            Compare { target: "value".into(), key: "k".into(), op: "=".into(), operand: "v".into() }
        );
        assert_eq!(txn.success.len(), 2);
        assert_eq!(txn.failure, [TxnOp::Get { key: "k".into() }]);
    }

    #[test]
    fn lab_commands_are_named_as_on_the_command_line() {
        assert_eq!(effect("kill n2"), Effect::Lab(LabOp::Kill("n2".into())));
        assert_eq!(
            effect("partition n1|n2,n3"),
            Effect::Lab(LabOp::Partition(vec![vec!["n1".into()], vec!["n2".into(), "n3".into()]]))
        );
        assert_eq!(effect("partition n1 | n2,n3"), effect("partition n1|n2,n3"));
        assert_eq!(effect("cut n1 n3"), Effect::Lab(LabOp::Cut("n1".into(), "n3".into())));
        assert_eq!(
            effect("slow n2 300ms --loss 5%"),
            Effect::Lab(LabOp::Slow("n2".into(), Slowness { delay_ms: 300, jitter_ms: 0, loss_percent: 5.0 }))
        );
        assert_eq!(effect("member remove n3"), Effect::Lab(LabOp::MemberRemove("n3".into())));
        assert_eq!(effect("tempo slow"), Effect::Lab(LabOp::Tempo(Tempo::SLOW)));
        assert_eq!(effect("load 100"), Effect::Load(Some(100)));
        assert_eq!(effect("load off"), Effect::Load(None));
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        let err = |line: &str| parse(line).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err("frobnicate").contains("unknown command \"frobnicate\""));
        assert!(err("put onlykey").contains("usage: put KEY VALUE"));
        assert!(err("get k --rev x").contains("--rev takes a revision number"));
        assert!(err("partition n1").contains("at least two groups"));
        assert!(err("cut n1 n1").contains("reaches itself"));
        assert!(err("load 0x").contains("puts per second"));
        assert!(err("put 'a b").contains("quote is not closed"));
    }

    #[test]
    fn a_quoted_value_comes_back_as_it_was() {
        for value in ["plain", "two words", "it's", "", "{\"a\": 1}", "'\"'"] {
            let line = format!("put k {}", crate::lab::supervisor::shell_quote(value));
            assert_eq!(words(&line).unwrap(), ["put", "k", value], "{line}");
        }
    }

    #[test]
    fn history_and_completion() {
        let mut line = CommandLine::default();
        for c in "kill n2".chars() {
            line.edit(KeyEvent::from(KeyCode::Char(c)));
        }
        assert_eq!(line.submit(), "kill n2");
        line.edit(KeyEvent::from(KeyCode::Up));
        assert_eq!(line.text(), "kill n2");
        line.edit(KeyEvent::from(KeyCode::Down));
        assert_eq!(line.text(), "");

        let members = vec!["n1".to_string(), "n2".to_string(), "n3".to_string()];
        line.set("ki");
        line.complete(&members, &[]);
        assert_eq!(line.text(), "kill ");
        line.complete(&members, &[]);
        assert_eq!(line.text(), "kill n");
        assert_eq!(line.candidates, members);
        line.set("member re");
        line.complete(&members, &[]);
        assert_eq!(line.text(), "member remove ");
        line.set("get /reg");
        line.complete(&members, &["/registry/pods/a".into(), "/registry/pods/b".into()]);
        assert_eq!(line.text(), "get /registry/pods/");
    }
}
