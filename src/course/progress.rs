//! The learner's progress: a plain-text (TOML) file in the data dir,
//! `$RAFTTY_HOME/lessons/progress.toml`, written whole and renamed into place, so it
//! survives restarts and is never half-written.

use std::collections::BTreeMap;
use std::path::Path;
use std::path::PathBuf;

use anyhow::Context;
use anyhow::Result;
use serde::Deserialize;
use serde::Serialize;

use crate::course::observe::Moment;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The lesson being taken, if any.
    pub current: Option<String>,
    #[serde(default)]
    pub lessons: BTreeMap<String, LessonProgress>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LessonProgress {
    /// The lab the lesson runs on.
    pub lab: String,
    /// The step being taken (0-based); the number of steps once the lesson is done.
    pub step: usize,
    /// Steps (1-based) the learner passed.
    #[serde(default)]
    pub solved: Vec<usize>,
    /// Steps passed after "show solution": done, but not by the learner.
    #[serde(default)]
    pub shown: Vec<usize>,
    /// Hints revealed for the current step.
    #[serde(default)]
    pub hints: usize,
    /// The cluster when the current step began: what "changed" is measured against.
    #[serde(default)]
    pub start: Moment,
}

impl LessonProgress {
    pub fn finished(&self, steps: usize) -> bool {
        self.step >= steps
    }
}

pub fn file(home: &Path) -> PathBuf {
    home.join("lessons").join("progress.toml")
}

impl Progress {
    pub fn load(home: &Path) -> Result<Progress> {
        let path = file(home);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("{} is damaged; delete it to start the lessons afresh", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Progress::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self, home: &Path) -> Result<()> {
        let path = file(home);
        let dir = path.parent().context("the progress file has no folder")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let text = toml::to_string(self).context("writing the progress")?;
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::course::observe::MemberMoment;

    #[test]
    fn progress_reads_back_as_written_and_a_missing_file_is_a_fresh_start() {
        let home = tempfile::tempdir().unwrap();
        assert_eq!(Progress::load(home.path()).unwrap(), Progress::default());
        let mut p = Progress { current: Some("quorum".into()), ..Default::default() };
        let start = Moment {
            unix_ms: 1,
            leader: Some("n1".into()),
            term: 2,
            revision: None,
            quorum: true,
            members: vec![MemberMoment { name: "n1".into(), state: "running".into(), ..Default::default() }],
            alarms: vec![],
            ..Default::default()
        };
        p.lessons.insert(
            "quorum".into(),
            LessonProgress { lab: "default".into(), step: 1, solved: vec![1], shown: vec![], hints: 2, start },
        );
        p.save(home.path()).unwrap();
        assert_eq!(Progress::load(home.path()).unwrap(), p);
        std::fs::write(file(home.path()), "current = [").unwrap();
        let e = Progress::load(home.path()).unwrap_err().to_string();
        assert!(e.contains("is damaged"), "{e}");
    }
}
