//! Writes a bbolt file in one go, from buckets whose entries are already known.

use super::BUCKET_HEADER;
use super::Buckets;
use super::ELEMENT;
use super::ELEMENT_BUCKET;
use super::FLAG_BRANCH;
use super::FLAG_LEAF;
use super::FLAG_META;
use super::MAGIC;
use super::NO_FREELIST;
use super::PAGE_HEADER;
use super::PAGE_SIZE;
use super::VERSION;
use super::fnv1a64;

struct Pages {
    /// Pages 0 and 1 are the metas, written last.
    file: Vec<u8>,
    next: u64,
}

impl Pages {
    /// Places a node of `body` bytes (header included) on as many pages as it needs.
    fn place(&mut self, mut node: Vec<u8>, flags: u16, count: usize) -> u64 {
        let pages = node.len().div_ceil(PAGE_SIZE).max(1);
        let id = self.next;
        self.next += pages as u64;
        node[0..8].copy_from_slice(&id.to_le_bytes());
        node[8..10].copy_from_slice(&flags.to_le_bytes());
        node[10..12].copy_from_slice(&(count as u16).to_le_bytes());
        node[12..16].copy_from_slice(&((pages - 1) as u32).to_le_bytes());
        node.resize(pages * PAGE_SIZE, 0);
        self.file.extend_from_slice(&node);
        id
    }
}

/// One entry as a leaf holds it: key, value, and whether the value is a bucket.
type LeafEntry<'a> = (&'a [u8], &'a [u8], u32);

fn leaf_node(entries: &[LeafEntry]) -> Vec<u8> {
    let mut node = vec![0u8; PAGE_HEADER + entries.len() * ELEMENT];
    for (i, (k, v, flags)) in entries.iter().enumerate() {
        let at = PAGE_HEADER + i * ELEMENT;
        let pos = (node.len() - at) as u32;
        node[at..at + 4].copy_from_slice(&flags.to_le_bytes());
        node[at + 4..at + 8].copy_from_slice(&pos.to_le_bytes());
        node[at + 8..at + 12].copy_from_slice(&(k.len() as u32).to_le_bytes());
        node[at + 12..at + 16].copy_from_slice(&(v.len() as u32).to_le_bytes());
        node.extend_from_slice(k);
        node.extend_from_slice(v);
    }
    node
}

fn branch_node(children: &[(Vec<u8>, u64)]) -> Vec<u8> {
    let mut node = vec![0u8; PAGE_HEADER + children.len() * ELEMENT];
    for (i, (k, id)) in children.iter().enumerate() {
        let at = PAGE_HEADER + i * ELEMENT;
        let pos = (node.len() - at) as u32;
        node[at..at + 4].copy_from_slice(&pos.to_le_bytes());
        node[at + 4..at + 8].copy_from_slice(&(k.len() as u32).to_le_bytes());
        node[at + 8..at + 16].copy_from_slice(&id.to_le_bytes());
        node.extend_from_slice(k);
    }
    node
}

/// Splits items into runs whose nodes fit a page (a run holds at least one item).
fn runs<T>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut used = PAGE_HEADER;
    for (i, item) in items.iter().enumerate() {
        let s = ELEMENT + size(item);
        if i > start && used + s > PAGE_SIZE {
            out.push(&items[start..i]);
            start = i;
            used = PAGE_HEADER;
        }
        used += s;
    }
    if start < items.len() || items.is_empty() {
        out.push(&items[start..]);
    }
    out
}

/// Writes a bucket's tree (leaves, then branches up to one root) and returns its root.
fn write_tree(pages: &mut Pages, entries: &[LeafEntry]) -> u64 {
    let mut level: Vec<(Vec<u8>, u64)> = runs(entries, |(k, v, _)| k.len() + v.len())
        .into_iter()
        .map(|run| {
            let first = run.first().map(|(k, _, _)| k.to_vec()).unwrap_or_default();
            (first, pages.place(leaf_node(run), FLAG_LEAF, run.len()))
        })
        .collect();
    while level.len() > 1 {
        level = runs(&level, |(k, _)| k.len())
            .into_iter()
            .map(|run| (run[0].0.clone(), pages.place(branch_node(run), FLAG_BRANCH, run.len())))
            .collect();
    }
    level[0].1
}

fn meta_page(id: u64, root: u64, high_water: u64, txid: u64) -> Vec<u8> {
    let mut page = vec![0u8; PAGE_SIZE];
    page[0..8].copy_from_slice(&id.to_le_bytes());
    page[8..10].copy_from_slice(&FLAG_META.to_le_bytes());
    let m = &mut page[PAGE_HEADER..];
    m[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    m[4..8].copy_from_slice(&VERSION.to_le_bytes());
    m[8..12].copy_from_slice(&(PAGE_SIZE as u32).to_le_bytes());
    // flags (12..16) stay 0; root bucket {root, sequence 0}
    m[16..24].copy_from_slice(&root.to_le_bytes());
    m[32..40].copy_from_slice(&NO_FREELIST.to_le_bytes());
    m[40..48].copy_from_slice(&high_water.to_le_bytes());
    m[48..56].copy_from_slice(&txid.to_le_bytes());
    let checksum = fnv1a64(&m[..56]);
    m[56..64].copy_from_slice(&checksum.to_le_bytes());
    page
}

/// A whole bbolt file holding `buckets` (each a top-level bucket of plain entries).
pub fn write(buckets: &Buckets) -> Vec<u8> {
    let mut pages = Pages { file: vec![0u8; 2 * PAGE_SIZE], next: 2 };
    let mut headers = Vec::with_capacity(buckets.len());
    for (name, entries) in buckets {
        let leaf: Vec<LeafEntry> = entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice(), 0)).collect();
        let root = write_tree(&mut pages, &leaf);
        let mut header = vec![0u8; BUCKET_HEADER];
        header[0..8].copy_from_slice(&root.to_le_bytes());
        headers.push((name.as_slice(), header));
    }
    let top: Vec<LeafEntry> = headers.iter().map(|(n, h)| (*n, h.as_slice(), ELEMENT_BUCKET)).collect();
    let root = write_tree(&mut pages, &top);
    let high_water = pages.next;
    // Both metas describe the same tree; the second is the newer.
    pages.file[..PAGE_SIZE].copy_from_slice(&meta_page(0, root, high_water, 1));
    pages.file[PAGE_SIZE..2 * PAGE_SIZE].copy_from_slice(&meta_page(1, root, high_water, 2));
    pages.file
}
