//! The keyspace as a tree split after each `/`, with the number of keys under every prefix.
//!
//! Kept live from Watch events, one key at a time. The rows a tree widget would show are
//! flattened only when the shape of the tree changes (a key appears or disappears, a prefix
//! is opened or closed), never when a value is overwritten, and drawing takes just the
//! visible slice: that is what keeps 100,000 keys fluid. tui-tree-widget needs every item
//! built as a widget each frame, which is why this small tree is our own.

use std::collections::BTreeMap;
use std::collections::HashSet;

/// What the tree needs to know of a key (its value is fetched when the key is selected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyMeta {
    pub mod_revision: i64,
    pub version: i64,
}

#[derive(Debug, Default)]
struct Node {
    children: BTreeMap<String, Node>,
    key: Option<KeyMeta>,
    /// Keys at or under this node.
    count: usize,
}

/// One line of the tree as drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The full key or prefix this row stands for.
    pub path: String,
    pub depth: usize,
    /// Keys under the prefix (1 for a key that has no children).
    pub count: usize,
    pub is_key: bool,
    pub has_children: bool,
    pub expanded: bool,
}

impl Row {
    /// The part of the path this row adds to its parent's.
    pub fn label(&self) -> &str {
        let trimmed = self.path.strip_suffix('/').unwrap_or(&self.path);
        let start = trimmed.rfind('/').map_or(0, |i| i + 1);
        &self.path[start..]
    }
}

#[derive(Debug, Default)]
pub struct Keyspace {
    root: Node,
    expanded: HashSet<String>,
    rows: Vec<Row>,
    /// The rows must be flattened again before they are read.
    stale: bool,
    filter: String,
}

/// `"/registry/pods/a"` -> `["/", "registry/", "pods/", "a"]`.
fn segments(key: &str) -> impl Iterator<Item = &str> {
    key.split_inclusive('/')
}

impl Keyspace {
    pub fn new() -> Keyspace {
        Keyspace { stale: true, ..Keyspace::default() }
    }

    pub fn len(&self) -> usize {
        self.root.count
    }

    pub fn is_empty(&self) -> bool {
        self.root.count == 0
    }

    pub fn clear(&mut self) {
        self.root = Node::default();
        self.stale = true;
    }

    /// Adds or updates a key.
    pub fn put(&mut self, key: &str, meta: KeyMeta) {
        let mut node = &mut self.root;
        let mut path = Vec::new();
        for seg in segments(key) {
            path.push(seg);
            node = node.children.entry(seg.to_string()).or_default();
        }
        let created = node.key.is_none();
        node.key = Some(meta);
        if created {
            self.adjust_counts(key, 1);
            self.stale = true;
        }
    }

    /// Removes a key; prefixes left empty disappear with it.
    pub fn delete(&mut self, key: &str) {
        fn remove(node: &mut Node, segs: &[&str]) -> bool {
            match segs.split_first() {
                None => {
                    let had = node.key.take().is_some();
                    if had {
                        node.count -= 1;
                    }
                    had
                }
                Some((first, rest)) => {
                    let Some(child) = node.children.get_mut(*first) else { return false };
                    let removed = remove(child, rest);
                    if removed {
                        node.count -= 1;
                        if child.count == 0 {
                            node.children.remove(*first);
                        }
                    }
                    removed
                }
            }
        }
        let segs: Vec<&str> = segments(key).collect();
        if remove(&mut self.root, &segs) {
            self.stale = true;
        }
    }

    fn adjust_counts(&mut self, key: &str, by: usize) {
        let mut node = &mut self.root;
        node.count += by;
        for seg in segments(key) {
            node = node.children.get_mut(seg).expect("the path was just created");
            node.count += by;
        }
    }

    pub fn get(&self, key: &str) -> Option<KeyMeta> {
        let mut node = &self.root;
        for seg in segments(key) {
            node = node.children.get(seg)?;
        }
        node.key
    }

    pub fn is_expanded(&self, path: &str) -> bool {
        self.expanded.contains(path)
    }

    pub fn set_expanded(&mut self, path: &str, open: bool) {
        let changed = if open { self.expanded.insert(path.to_string()) } else { self.expanded.remove(path) };
        if changed {
            self.stale = true;
        }
    }

    /// Opens every prefix down to `key`, so it can be shown.
    pub fn reveal(&mut self, key: &str) {
        let mut path = String::new();
        let segs: Vec<&str> = segments(key).collect();
        for seg in segs.iter().take(segs.len().saturating_sub(1)) {
            path.push_str(seg);
            self.set_expanded(&path.clone(), true);
        }
    }

    /// Shows only keys containing `filter` (all of their prefixes opened); empty shows all.
    pub fn set_filter(&mut self, filter: &str) {
        if self.filter != filter {
            self.filter = filter.to_string();
            self.stale = true;
        }
    }

    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// The rows of the tree as it is drawn now.
    pub fn rows(&mut self) -> &[Row] {
        if self.stale {
            self.rows = self.flatten();
            self.stale = false;
        }
        &self.rows
    }

    /// Flattens the rows again if the tree changed; the app calls it before each frame.
    pub fn refresh(&mut self) {
        let _ = self.rows();
    }

    /// The rows as last flattened (drawing takes `&self`).
    pub fn cached_rows(&self) -> &[Row] {
        &self.rows
    }

    fn flatten(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        let mut path = String::new();
        if self.filter.is_empty() {
            self.walk(&self.root, &mut path, 0, &mut rows);
        } else {
            self.walk_filtered(&self.root, &mut path, 0, &mut rows);
        }
        rows
    }

    fn walk(&self, node: &Node, path: &mut String, depth: usize, rows: &mut Vec<Row>) {
        for (seg, child) in &node.children {
            let len = path.len();
            path.push_str(seg);
            let expanded = self.expanded.contains(path.as_str());
            rows.push(Row {
                path: path.clone(),
                depth,
                count: child.count,
                is_key: child.key.is_some(),
                has_children: !child.children.is_empty(),
                expanded,
            });
            if expanded {
                self.walk(child, path, depth + 1, rows);
            }
            path.truncate(len);
        }
    }

    /// Under a filter every prefix holding a match is open; returns whether `node` held one.
    fn walk_filtered(&self, node: &Node, path: &mut String, depth: usize, rows: &mut Vec<Row>) -> usize {
        let mut matched = 0;
        for (seg, child) in &node.children {
            let len = path.len();
            path.push_str(seg);
            let at = rows.len();
            rows.push(Row {
                path: path.clone(),
                depth,
                count: 0,
                is_key: child.key.is_some(),
                has_children: !child.children.is_empty(),
                expanded: true,
            });
            let own = usize::from(child.key.is_some() && path.contains(&self.filter));
            let under = self.walk_filtered(child, path, depth + 1, rows);
            if own + under == 0 {
                rows.truncate(at);
            } else {
                rows[at].count = own + under;
                matched += own + under;
            }
            path.truncate(len);
        }
        matched
    }

    /// Every key, in order (for completion and tests).
    pub fn keys(&self) -> Vec<String> {
        fn collect(node: &Node, path: &mut String, out: &mut Vec<String>) {
            for (seg, child) in &node.children {
                let len = path.len();
                path.push_str(seg);
                if child.key.is_some() {
                    out.push(path.clone());
                }
                collect(child, path, out);
                path.truncate(len);
            }
        }
        let mut out = Vec::new();
        collect(&self.root, &mut String::new(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(rev: i64) -> KeyMeta {
        KeyMeta { mod_revision: rev, version: 1 }
    }

    #[test]
    fn prefixes_count_the_keys_under_them_and_open_on_demand() {
        let mut ks = Keyspace::new();
        ks.put("/registry/pods/default/nginx", meta(2));
        ks.put("/registry/pods/default/redis", meta(3));
        ks.put("/registry/services/kubernetes", meta(4));
        ks.put("plain", meta(5));
        let rows: Vec<(String, usize)> = ks.rows().iter().map(|r| (r.path.clone(), r.count)).collect();
        assert_eq!(rows, [("/".to_string(), 3), ("plain".to_string(), 1)]);
        ks.set_expanded("/", true);
        ks.set_expanded("/registry/", true);
        let rows: Vec<(String, usize, &str)> = ks.rows().iter().map(|r| (r.path.clone(), r.count, "")).collect();
        assert_eq!(rows[1], ("/registry/".to_string(), 3, ""));
        assert_eq!(rows[2], ("/registry/pods/".to_string(), 2, ""));
        assert_eq!(rows[3], ("/registry/services/".to_string(), 1, ""));
        assert_eq!(ks.rows()[2].label(), "pods/");
        assert_eq!(ks.len(), 4);
    }

    #[test]
    fn deleting_the_last_key_of_a_prefix_removes_the_prefix() {
        let mut ks = Keyspace::new();
        ks.put("/a/b", meta(2));
        ks.put("/a/c", meta(3));
        ks.reveal("/a/b");
        ks.delete("/a/b");
        assert_eq!(ks.rows().iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), ["/", "/a/", "/a/c"]);
        ks.delete("/a/c");
        assert!(ks.rows().is_empty());
        assert!(ks.is_empty());
        ks.delete("/never");
        assert_eq!(ks.len(), 0);
    }

    #[test]
    fn overwriting_a_key_keeps_the_shape_and_the_count() {
        let mut ks = Keyspace::new();
        ks.put("k", meta(2));
        let _ = ks.rows();
        ks.put("k", meta(3));
        assert!(!ks.stale, "an overwrite must not flatten the tree again");
        assert_eq!(ks.get("k"), Some(meta(3)));
        assert_eq!(ks.len(), 1);
    }

    #[test]
    fn a_filter_shows_matching_keys_with_their_prefixes_open() {
        let mut ks = Keyspace::new();
        ks.put("/app/config", meta(2));
        ks.put("/app/db/password", meta(3));
        ks.put("/other/x", meta(4));
        ks.set_filter("pass");
        let paths: Vec<&str> = ks.rows().iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["/", "/app/", "/app/db/", "/app/db/password"]);
        assert_eq!(ks.rows()[1].count, 1);
    }

    #[test]
    fn a_hundred_thousand_keys_flatten_only_what_is_open() {
        let mut ks = Keyspace::new();
        for i in 0..100_000 {
            ks.put(&format!("/bench/{:03}/key{i}", i % 100), meta(i + 2));
        }
        assert_eq!(ks.rows().len(), 1);
        ks.set_expanded("/", true);
        ks.set_expanded("/bench/", true);
        assert_eq!(ks.rows().len(), 102);
        assert_eq!(ks.rows()[2].count, 1000);
    }
}
