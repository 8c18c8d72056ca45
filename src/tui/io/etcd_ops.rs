//! The etcdctl commands of the `:` line, sent to the cluster as etcdctl sends them and
//! printed the way etcdctl prints them.

use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use tokio_stream::StreamExt;

use crate::proto::etcdserverpb::CompactionRequest;
use crate::proto::etcdserverpb::Compare;
use crate::proto::etcdserverpb::DeleteRangeRequest;
use crate::proto::etcdserverpb::MemberListRequest;
use crate::proto::etcdserverpb::PutRequest;
use crate::proto::etcdserverpb::RangeRequest;
use crate::proto::etcdserverpb::RequestOp;
use crate::proto::etcdserverpb::StatusRequest;
use crate::proto::etcdserverpb::TxnRequest;
use crate::proto::etcdserverpb::WatchCreateRequest;
use crate::proto::etcdserverpb::compare;
use crate::proto::etcdserverpb::request_op;
use crate::proto::etcdserverpb::response_op;
use crate::proto::mvccpb::event::EventType;
use crate::tui::app::Action;
use crate::tui::command::AuthCommand;
use crate::tui::command::EtcdOp;
use crate::tui::command::Txn;
use crate::tui::command::TxnOp;
use crate::tui::io::Io;

pub use crate::client::prefix_end;

fn bytes(s: &str) -> Bytes {
    Bytes::from(s.as_bytes().to_vec())
}

pub fn run(io: &Arc<Io>, op: EtcdOp) {
    match op {
        EtcdOp::Watch { key, prefix, revision } => {
            let runner = io.clone();
            let task = tokio::spawn(async move {
                if let Err(e) = watch(&runner, key, prefix, revision).await {
                    runner.send(Action::WatchLines(vec![format!("watch ended: {e:#}")]));
                }
            });
            if let Some(old) = io.watch_task.lock().unwrap_or_else(|e| e.into_inner()).replace(task) {
                old.abort();
            }
        }
        EtcdOp::WatchOff => {
            if let Some(old) = io.watch_task.lock().unwrap_or_else(|e| e.into_inner()).take() {
                old.abort();
            }
        }
        op => {
            let io = io.clone();
            tokio::spawn(async move {
                let title = describe(&op);
                match tokio::time::timeout(std::time::Duration::from_secs(15), request(&io, op)).await {
                    Ok(Ok(lines)) => io.send(Action::Output { ok: true, title, lines }),
                    Ok(Err(e)) => io.send(Action::Output { ok: false, title, lines: vec![format!("Error: {e:#}")] }),
                    Err(_) => io.send(Action::Output {
                        ok: false,
                        title,
                        lines: vec![
                            "Error: context deadline exceeded (no answer within 15s: is there a quorum?)".into(),
                        ],
                    }),
                }
                super::lessons::poke(&io);
            });
        }
    }
}

fn describe(op: &EtcdOp) -> String {
    match op {
        EtcdOp::Put { key, .. } => format!("put {key}"),
        EtcdOp::Get { key, .. } => format!("get {key}"),
        EtcdOp::Del { key, .. } => format!("del {key}"),
        EtcdOp::Txn(_) => "txn".into(),
        EtcdOp::Compact { revision } => format!("compact {revision}"),
        EtcdOp::MemberList => "member list".into(),
        EtcdOp::EndpointStatus => "endpoint status".into(),
        EtcdOp::Watch { key, .. } => format!("watch {key}"),
        EtcdOp::SnapshotStatus { file } => format!("snapshot status {file}"),
        EtcdOp::WatchOff => "watch off".into(),
        EtcdOp::Auth(a) => match a {
            AuthCommand::Enable => "auth enable".into(),
            AuthCommand::Disable => "auth disable".into(),
            AuthCommand::UserAdd { name, .. } => format!("user add {name}"),
            AuthCommand::UserGrantRole { user, role } => format!("user grant-role {user} {role}"),
            AuthCommand::UserList => "user list".into(),
            AuthCommand::RoleAdd { name } => format!("role add {name}"),
            AuthCommand::RoleGrantPermission { role, .. } => format!("role grant-permission {role}"),
            AuthCommand::RoleList => "role list".into(),
        },
    }
}

/// Tries the leader first, then every other member, as etcdctl's balancer would when a
/// connection fails. A request that got an answer (even an error) is not tried again.
async fn with_client<T, F, Fut>(io: &Io, f: F) -> Result<T>
where
    F: Fn(crate::client::EtcdClient) -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let mut last = anyhow::anyhow!("no member to send it to");
    for endpoint in io.endpoints() {
        let client = io.client(&endpoint)?;
        match f(client).await {
            Ok(v) => return Ok(v),
            Err(s) if crate::client::never_sent(&s) || s.code() == tonic::Code::Unavailable => {
                last = anyhow::anyhow!("{endpoint}: {}", s.message());
            }
            Err(s) => anyhow::bail!("{}", s.message()),
        }
    }
    Err(last)
}

async fn request(io: &Io, op: EtcdOp) -> Result<Vec<String>> {
    match op {
        EtcdOp::Put { key, value } => {
            let put = PutRequest { key: bytes(&key), value: bytes(&value), ..Default::default() };
            let r = with_client(io, |mut c| {
                let put = put.clone();
                async move { c.kv.put(put).await.map(|r| r.into_inner()) }
            })
            .await?;
            Ok(vec![format!("OK (revision {})", r.header.map_or(0, |h| h.revision))])
        }
        EtcdOp::Get { key, prefix, revision, keys_only } => {
            let range = RangeRequest {
                key: bytes(&key),
                range_end: if prefix { prefix_end(key.as_bytes()) } else { Bytes::new() },
                revision,
                keys_only,
                limit: 1000,
                ..Default::default()
            };
            let r = with_client(io, |mut c| {
                let range = range.clone();
                async move { c.kv.range(range).await.map(|r| r.into_inner()) }
            })
            .await?;
            let mut lines = Vec::new();
            for kv in &r.kvs {
                lines.push(String::from_utf8_lossy(&kv.key).into_owned());
                if !keys_only {
                    lines.push(String::from_utf8_lossy(&kv.value).into_owned());
                }
            }
            if r.more {
                lines.push(format!("... and more ({} keys in all; the first 1000 shown)", r.count));
            }
            if lines.is_empty() {
                lines.push("(no keys)".into());
                lines.push(format!("at revision {}", r.header.map_or(0, |h| h.revision)));
            }
            Ok(lines)
        }
        EtcdOp::Del { key, prefix } => {
            let del = DeleteRangeRequest {
                key: bytes(&key),
                range_end: if prefix { prefix_end(key.as_bytes()) } else { Bytes::new() },
                ..Default::default()
            };
            let r = with_client(io, |mut c| {
                let del = del.clone();
                async move { c.kv.delete_range(del).await.map(|r| r.into_inner()) }
            })
            .await?;
            Ok(vec![r.deleted.to_string()])
        }
        EtcdOp::Txn(txn) => {
            let request = txn_request(&txn)?;
            let r = with_client(io, |mut c| {
                let request = request.clone();
                async move { c.kv.txn(request).await.map(|r| r.into_inner()) }
            })
            .await?;
            let mut lines = vec![if r.succeeded { "SUCCESS".to_string() } else { "FAILURE".to_string() }];
            for op in r.responses {
                match op.response {
                    Some(response_op::Response::ResponsePut(_)) => lines.push("OK".into()),
                    Some(response_op::Response::ResponseDeleteRange(d)) => lines.push(d.deleted.to_string()),
                    Some(response_op::Response::ResponseRange(g)) => {
                        for kv in g.kvs {
                            lines.push(String::from_utf8_lossy(&kv.key).into_owned());
                            lines.push(String::from_utf8_lossy(&kv.value).into_owned());
                        }
                    }
                    _ => {}
                }
            }
            Ok(lines)
        }
        EtcdOp::Auth(command) => auth(io, command).await,
        EtcdOp::Compact { revision } => {
            let request = CompactionRequest { revision, physical: false };
            with_client(io, |mut c| async move { c.kv.compact(request).await.map(|r| r.into_inner()) }).await?;
            Ok(vec![format!("compacted revision {revision}")])
        }
        EtcdOp::MemberList => {
            let r = with_client(io, |mut c| async move {
                c.cluster.member_list(MemberListRequest::default()).await.map(|r| r.into_inner())
            })
            .await?;
            Ok(r.members
                .iter()
                .map(|m| {
                    format!(
                        "{:x}, started, {}, {}, {}, {}",
                        m.id,
                        m.name,
                        m.peer_ur_ls.join(","),
                        m.client_ur_ls.join(","),
                        m.is_learner
                    )
                })
                .collect())
        }
        EtcdOp::EndpointStatus => {
            let mut lines = Vec::new();
            for endpoint in io.endpoints() {
                let mut client = io.client(&endpoint)?;
                let answer = tokio::time::timeout(
                    std::time::Duration::from_secs(2),
                    client.maintenance.status(StatusRequest::default()),
                )
                .await;
                match answer {
                    Ok(Ok(s)) => {
                        let s = s.into_inner();
                        let id = s.header.as_ref().map_or(0, |h| h.member_id);
                        lines.push(format!(
                            "{endpoint}, {id:x}, {}, {} B, {}, {}, {}, {}, {}",
                            s.version,
                            s.db_size,
                            s.leader == id,
                            s.is_learner,
                            s.raft_term,
                            s.raft_index,
                            s.raft_applied_index
                        ));
                    }
                    Ok(Err(e)) => lines.push(format!("{endpoint}: {}", e.message())),
                    Err(_) => lines.push(format!("{endpoint}: context deadline exceeded")),
                }
            }
            lines.sort();
            lines.insert(
                0,
                "ENDPOINT, ID, VERSION, DB SIZE, IS LEADER, IS LEARNER, RAFT TERM, RAFT INDEX, APPLIED".into(),
            );
            Ok(lines)
        }
        EtcdOp::SnapshotStatus { file } => {
            let bytes = std::fs::read(&file).map_err(|e| anyhow::anyhow!("reading {file}: {e}"))?;
            Ok(crate::backup::snapshot_file::status(&bytes)?.render().lines().map(str::to_string).collect())
        }
        EtcdOp::Watch { .. } | EtcdOp::WatchOff => Ok(vec![]),
    }
}

/// etcdctl's auth commands, answered as etcdctl words them.
async fn auth(io: &Io, command: AuthCommand) -> Result<Vec<String>> {
    use crate::proto::etcdserverpb::*;
    let line = match command {
        AuthCommand::Enable => {
            let enable = || with_client(io, |mut c| async move { c.auth.auth_enable(AuthEnableRequest {}).await });
            match enable().await {
                Err(e) if e.to_string().contains("root user does not have root role") => {
                    // What etcdctl does on this exact error: give root the root role, then again.
                    let role = AuthRoleAddRequest { name: "root".into() };
                    let added = with_client(io, |mut c| {
                        let role = role.clone();
                        async move { c.auth.role_add(role).await }
                    })
                    .await;
                    if let Err(e) = added
                        && !e.to_string().contains("already exists")
                    {
                        return Err(e);
                    }
                    let grant = AuthUserGrantRoleRequest { user: "root".into(), role: "root".into() };
                    with_client(io, |mut c| {
                        let grant = grant.clone();
                        async move { c.auth.user_grant_role(grant).await }
                    })
                    .await?;
                    enable().await?;
                }
                other => {
                    other?;
                }
            }
            "Authentication Enabled".to_string()
        }
        AuthCommand::Disable => {
            with_client(io, |mut c| async move { c.auth.auth_disable(AuthDisableRequest {}).await }).await?;
            "Authentication Disabled".to_string()
        }
        AuthCommand::UserAdd { name, password } => {
            let request = AuthUserAddRequest {
                name: name.clone(),
                password: password.clone().unwrap_or_default(),
                options: Some(crate::proto::authpb::UserAddOptions { no_password: password.is_none() }),
            };
            with_client(io, |mut c| {
                let request = request.clone();
                async move { c.auth.user_add(request).await }
            })
            .await?;
            let how = if password.is_none() { " (no password: its certificate is its identity)" } else { "" };
            format!("User {name} created{how}")
        }
        AuthCommand::UserGrantRole { user, role } => {
            let request = AuthUserGrantRoleRequest { user: user.clone(), role: role.clone() };
            with_client(io, |mut c| {
                let request = request.clone();
                async move { c.auth.user_grant_role(request).await }
            })
            .await?;
            format!("Role {role} is granted to user {user}")
        }
        AuthCommand::UserList => {
            let r = with_client(io, |mut c| async move {
                c.auth.user_list(AuthUserListRequest {}).await.map(|r| r.into_inner())
            })
            .await?;
            return Ok(r.users);
        }
        AuthCommand::RoleAdd { name } => {
            let request = AuthRoleAddRequest { name: name.clone() };
            with_client(io, |mut c| {
                let request = request.clone();
                async move { c.auth.role_add(request).await }
            })
            .await?;
            format!("Role {name} created")
        }
        AuthCommand::RoleGrantPermission { role, permission, key, range_end } => {
            let perm_type = match permission.as_str() {
                "read" => crate::proto::authpb::permission::Type::Read,
                "write" => crate::proto::authpb::permission::Type::Write,
                _ => crate::proto::authpb::permission::Type::Readwrite,
            };
            let request = AuthRoleGrantPermissionRequest {
                name: role.clone(),
                perm: Some(crate::proto::authpb::Permission {
                    perm_type: perm_type as i32,
                    key: bytes(&key),
                    range_end: bytes(&range_end),
                }),
            };
            with_client(io, |mut c| {
                let request = request.clone();
                async move { c.auth.role_grant_permission(request).await }
            })
            .await?;
            format!("Role {role} updated")
        }
        AuthCommand::RoleList => {
            let r = with_client(io, |mut c| async move {
                c.auth.role_list(AuthRoleListRequest {}).await.map(|r| r.into_inner())
            })
            .await?;
            return Ok(r.roles);
        }
    };
    Ok(vec![line])
}

fn txn_request(txn: &Txn) -> Result<TxnRequest> {
    let mut compares = Vec::new();
    for c in &txn.compares {
        let result = match c.op.as_str() {
            "=" => compare::CompareResult::Equal,
            "!=" => compare::CompareResult::NotEqual,
            "<" => compare::CompareResult::Less,
            _ => compare::CompareResult::Greater,
        };
        let number = || -> Result<i64> {
            c.operand
                .parse()
                .map_err(|_| anyhow::anyhow!("{}(\"{}\") compares with a number, not {:?}", c.target, c.key, c.operand))
        };
        let (target, union) = match c.target.as_str() {
            "value" => (compare::CompareTarget::Value, compare::TargetUnion::Value(bytes(&c.operand))),
            "version" => (compare::CompareTarget::Version, compare::TargetUnion::Version(number()?)),
            "create" => (compare::CompareTarget::Create, compare::TargetUnion::CreateRevision(number()?)),
            _ => (compare::CompareTarget::Mod, compare::TargetUnion::ModRevision(number()?)),
        };
        compares.push(Compare {
            result: result as i32,
            target: target as i32,
            key: bytes(&c.key),
            target_union: Some(union),
            range_end: Bytes::new(),
        });
    }
    let ops = |ops: &[TxnOp]| -> Vec<RequestOp> {
        ops.iter()
            .map(|op| RequestOp {
                request: Some(match op {
                    TxnOp::Put { key, value } => request_op::Request::RequestPut(PutRequest {
                        key: bytes(key),
                        value: bytes(value),
                        ..Default::default()
                    }),
                    TxnOp::Get { key } => {
                        request_op::Request::RequestRange(RangeRequest { key: bytes(key), ..Default::default() })
                    }
                    TxnOp::Del { key } => request_op::Request::RequestDeleteRange(DeleteRangeRequest {
                        key: bytes(key),
                        ..Default::default()
                    }),
                }),
            })
            .collect()
    };
    Ok(TxnRequest { compare: compares, success: ops(&txn.success), failure: ops(&txn.failure) })
}

/// `watch KEY`: streams events into the output pane, as etcdctl prints them.
async fn watch(io: &Io, key: String, prefix: bool, revision: i64) -> Result<()> {
    let endpoint = io.endpoints().into_iter().next().ok_or_else(|| anyhow::anyhow!("no member to watch on"))?;
    let mut client = io.client(&endpoint)?;
    let create = WatchCreateRequest {
        key: bytes(&key),
        range_end: if prefix { prefix_end(key.as_bytes()) } else { Bytes::new() },
        start_revision: revision,
        prev_kv: true,
        ..Default::default()
    };
    let (requests, mut stream) = client.open_watch(create, false).await?;
    let what = if prefix { format!("every key under {key}") } else { key.clone() };
    io.send(Action::WatchLines(vec![format!("watching {what} on {endpoint}")]));
    while let Some(answer) = stream.next().await {
        let answer = answer.map_err(|s| anyhow::anyhow!("{}", s.message()))?;
        anyhow::ensure!(!answer.canceled, "cancelled: {}", answer.cancel_reason);
        let mut lines = Vec::new();
        for e in answer.events {
            let Some(kv) = e.kv else { continue };
            let kind = if e.r#type == EventType::Delete as i32 { "DELETE" } else { "PUT" };
            lines.push(format!("{kind} {} (revision {})", String::from_utf8_lossy(&kv.key), kv.mod_revision));
            if kind == "PUT" {
                lines.push(String::from_utf8_lossy(&kv.value).into_owned());
            }
        }
        if !lines.is_empty() {
            io.send(Action::WatchLines(lines));
        }
    }
    drop(requests);
    anyhow::bail!("the member closed the watch")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_end_where_etcdctl_ends_them() {
        assert_eq!(prefix_end(b"/a/"), Bytes::from_static(b"/a0"));
        assert_eq!(prefix_end(b"a\xff"), Bytes::from_static(b"b"));
        assert_eq!(prefix_end(b"\xff"), Bytes::from_static(b"\0"));
    }
}
