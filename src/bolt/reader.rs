//! Reads a bbolt file: picks the valid meta page, follows the root bucket down, and checks
//! every page it meets (in the file, of the expected kind, reached only once).

use std::collections::HashSet;

use anyhow::Context;
use anyhow::Result;
use anyhow::bail;
use anyhow::ensure;

use super::BUCKET_HEADER;
use super::Buckets;
use super::ELEMENT;
use super::ELEMENT_BUCKET;
use super::FLAG_BRANCH;
use super::FLAG_LEAF;
use super::FLAG_META;
use super::MAGIC;
use super::PAGE_HEADER;
use super::VERSION;
use super::fnv1a64;

/// A key and its value, or a sub-bucket's name and its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Value(Vec<u8>, Vec<u8>),
    Bucket(Vec<u8>, Vec<Entry>),
}

pub struct BoltFile<'a> {
    data: &'a [u8],
    page_size: usize,
    root: u64,
    high_water: u64,
    pub txid: u64,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

struct Meta {
    page_size: usize,
    root: u64,
    high_water: u64,
    txid: u64,
}

fn meta(data: &[u8], at: usize) -> Result<Meta> {
    ensure!(data.len() >= at + PAGE_HEADER + 64, "the file is too short for a meta page");
    let page = &data[at..];
    ensure!(u16_at(page, 8) & FLAG_META != 0, "the page is not a meta page");
    let m = &page[PAGE_HEADER..PAGE_HEADER + 64];
    ensure!(u32_at(m, 0) == MAGIC, "not a bbolt file (bad magic number)");
    ensure!(u32_at(m, 4) == VERSION, "bbolt file version {} (only version {VERSION} is known)", u32_at(m, 4));
    ensure!(u64_at(m, 56) == fnv1a64(&m[..56]), "the meta page's checksum does not match");
    Ok(Meta { page_size: u32_at(m, 8) as usize, root: u64_at(m, 16), high_water: u64_at(m, 40), txid: u64_at(m, 48) })
}

impl<'a> BoltFile<'a> {
    /// Opens the file in `data`, choosing the valid meta page with the higher transaction id.
    pub fn open(data: &'a [u8]) -> Result<BoltFile<'a>> {
        let first = meta(data, 0);
        // The second meta page sits one page in: the first says where, if it can be read.
        let page_size = first.as_ref().map(|m| m.page_size).unwrap_or(super::PAGE_SIZE);
        let second = meta(data, page_size);
        let chosen = match (first, second) {
            (Ok(a), Ok(b)) => {
                if b.txid > a.txid {
                    b
                } else {
                    a
                }
            }
            (Ok(a), Err(_)) | (Err(_), Ok(a)) => a,
            (Err(e), Err(_)) => return Err(e).context("neither meta page is valid"),
        };
        ensure!(
            chosen.page_size.is_power_of_two() && (512..=65536).contains(&chosen.page_size),
            "implausible page size {}",
            chosen.page_size
        );
        ensure!(
            (chosen.high_water as usize).saturating_mul(chosen.page_size) <= data.len(),
            "the file is truncated: its meta page counts {} pages of {} bytes, but it has {} bytes",
            chosen.high_water,
            chosen.page_size,
            data.len()
        );
        Ok(BoltFile {
            data,
            page_size: chosen.page_size,
            root: chosen.root,
            high_water: chosen.high_water,
            txid: chosen.txid,
        })
    }

    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// The bytes of page `id` and the pages it overflows into.
    fn page(&self, id: u64, seen: &mut HashSet<u64>) -> Result<&'a [u8]> {
        ensure!(id >= 2 && id < self.high_water, "page {id} is outside the file's {} pages", self.high_water);
        let at = id as usize * self.page_size;
        let head = &self.data[at..at + PAGE_HEADER];
        ensure!(u64_at(head, 0) == id, "page {id} says it is page {}", u64_at(head, 0));
        let overflow = u32_at(head, 12) as u64;
        ensure!(id + overflow < self.high_water, "page {id} overflows past the end of the file");
        for p in id..=id + overflow {
            ensure!(seen.insert(p), "page {p} is reached twice");
        }
        Ok(&self.data[at..at + (overflow as usize + 1) * self.page_size])
    }

    /// Every entry of the file, buckets with their entries inside.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let mut seen = HashSet::new();
        self.tree(self.root, &mut seen, 0)
    }

    /// The top-level buckets of plain entries, as etcd lays out its backend.
    pub fn buckets(&self) -> Result<Buckets> {
        let mut out = Buckets::new();
        for e in self.entries()? {
            match e {
                Entry::Bucket(name, entries) => {
                    let values = entries
                        .into_iter()
                        .map(|e| match e {
                            Entry::Value(k, v) => Ok((k, v)),
                            Entry::Bucket(n, _) => {
                                bail!("nested bucket {:?} (etcd has none)", String::from_utf8_lossy(&n))
                            }
                        })
                        .collect::<Result<Vec<_>>>()?;
                    out.insert(name, values);
                }
                Entry::Value(k, _) => {
                    bail!("a plain key {:?} at the top level (etcd puts all in buckets)", String::from_utf8_lossy(&k))
                }
            }
        }
        Ok(out)
    }

    fn tree(&self, id: u64, seen: &mut HashSet<u64>, depth: usize) -> Result<Vec<Entry>> {
        ensure!(depth < 64, "the tree is deeper than any real file's (a loop?)");
        let page = self.page(id, seen)?;
        self.node(page, seen, depth).with_context(|| format!("in page {id}"))
    }

    fn node(&self, page: &'a [u8], seen: &mut HashSet<u64>, depth: usize) -> Result<Vec<Entry>> {
        let flags = u16_at(page, 8);
        let count = u16_at(page, 10) as usize;
        ensure!(PAGE_HEADER + count * ELEMENT <= page.len(), "{count} elements do not fit the page");
        let mut out = Vec::new();
        if flags & FLAG_BRANCH != 0 {
            let mut last: Option<&[u8]> = None;
            for i in 0..count {
                let at = PAGE_HEADER + i * ELEMENT;
                let (pos, ksize, child) =
                    (u32_at(page, at) as usize, u32_at(page, at + 4) as usize, u64_at(page, at + 8));
                let key = page.get(at + pos..at + pos + ksize).context("a branch key lies outside its page")?;
                ensure!(last.is_none_or(|l| l < key), "branch keys out of order");
                last = Some(key);
                out.extend(self.tree(child, seen, depth + 1)?);
            }
            return Ok(out);
        }
        ensure!(flags & FLAG_LEAF != 0, "a page of kind {flags:#x} where a branch or leaf belongs");
        let mut last: Option<&[u8]> = None;
        for i in 0..count {
            let at = PAGE_HEADER + i * ELEMENT;
            let (eflags, pos) = (u32_at(page, at), u32_at(page, at + 4) as usize);
            let (ksize, vsize) = (u32_at(page, at + 8) as usize, u32_at(page, at + 12) as usize);
            let key = page.get(at + pos..at + pos + ksize).context("a key lies outside its page")?;
            let value =
                page.get(at + pos + ksize..at + pos + ksize + vsize).context("a value lies outside its page")?;
            ensure!(last.is_none_or(|l| l < key), "keys out of order");
            last = Some(key);
            if eflags & ELEMENT_BUCKET != 0 {
                ensure!(value.len() >= BUCKET_HEADER, "a bucket value shorter than a bucket header");
                let root = u64_at(value, 0);
                let inner = if root == 0 {
                    // Inline: a page image follows the header.
                    ensure!(value.len() >= BUCKET_HEADER + PAGE_HEADER, "an inline bucket without its page");
                    self.node(&value[BUCKET_HEADER..], seen, depth + 1)?
                } else {
                    self.tree(root, seen, depth + 1)?
                };
                out.push(Entry::Bucket(key.to_vec(), inner));
            } else {
                out.push(Entry::Value(key.to_vec(), value.to_vec()));
            }
        }
        Ok(out)
    }
}
