//! The good rows of an import, sorted by number and deduplicated, in bounded memory.
//!
//! The store keys subscribers by the number itself, so rows written in number order are
//! appended to its B-trees instead of scattered through them: the difference between a bulk
//! load and millions of random index inserts. Rows are kept compactly (16 bytes plus their
//! district and attributes in one arena); when that passes its budget (`--sort-memory`), the
//! rows so far are sorted and spilled to an unlinked temporary file (a *run*), and at the end
//! the runs and what is still in memory are merged. Sorting is stable and runs are merged in file
//! order, so of several rows with the same number the first one in the file wins and the
//! others are counted as duplicates.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};

use crate::msisdn::{Carrier, Msisdn};
use crate::store::NewSubscriber;

const NO_VALUE: u32 = u32::MAX;
/// The carrier byte of a row whose carrier comes from its prefix.
const NO_CARRIER: u8 = u8::MAX;

/// One row: the number and where its district and attributes are in the arena.
#[derive(Clone, Copy)]
struct Entry {
    key: u64,
    at: u32,
}

/// A row as it comes out of the merge.
struct Item {
    key: u64,
    district: u32,
    carrier: u8,
    attributes: Option<Vec<u8>>,
}

pub struct SortedRows {
    budget: usize,
    entries: Vec<Entry>,
    /// Per row: district id (u32 LE), carrier (`Carrier as u8`, `NO_CARRIER` = by prefix),
    /// attributes length (u32 LE, `NO_VALUE` = none), bytes.
    arena: Vec<u8>,
    districts: Vec<Arc<str>>,
    district_ids: HashMap<Arc<str>, u32>,
    runs: Vec<File>,
    spill_dir: std::path::PathBuf,
}

/// What the merge did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Merged {
    pub unique: u64,
    pub duplicates: u64,
}

impl SortedRows {
    pub fn new(budget: usize) -> Self {
        SortedRows {
            budget,
            entries: Vec::new(),
            arena: Vec::new(),
            districts: Vec::new(),
            district_ids: HashMap::new(),
            runs: Vec::new(),
            spill_dir: std::env::temp_dir(),
        }
    }

    /// Adds a row; spills a run first when memory is full. `carrier` is the carrier the
    /// source names (a list from a carrier, a carrier column); `None` goes by the prefix.
    pub fn push(
        &mut self,
        msisdn: Msisdn,
        carrier: Option<Carrier>,
        district: Option<&Arc<str>>,
        attributes: Option<&str>,
    ) -> Result<()> {
        let attributes = attributes.map(str::as_bytes);
        let size = 9 + attributes.map_or(0, <[u8]>::len);
        if !self.entries.is_empty()
            && self.entries.len() * size_of::<Entry>() + self.arena.len() + size > self.budget
        {
            self.spill()?;
        }
        let district = match district {
            None => NO_VALUE,
            Some(name) => match self.district_ids.get(name) {
                Some(&id) => id,
                None => {
                    let id = self.districts.len() as u32;
                    self.districts.push(Arc::clone(name));
                    self.district_ids.insert(Arc::clone(name), id);
                    id
                }
            },
        };
        let at = u32::try_from(self.arena.len()).context("an import run outgrew 4 GiB")?;
        self.arena.extend_from_slice(&district.to_le_bytes());
        self.arena.push(carrier.map_or(NO_CARRIER, |c| c as u8));
        match attributes {
            None => self.arena.extend_from_slice(&NO_VALUE.to_le_bytes()),
            Some(a) => {
                self.arena
                    .extend_from_slice(&(a.len() as u32).to_le_bytes());
                self.arena.extend_from_slice(a);
            }
        }
        self.entries.push(Entry {
            key: msisdn.as_u64(),
            at,
        });
        Ok(())
    }

    /// Runs spilled to disk so far (for tests and diagnostics).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    fn spill(&mut self) -> Result<()> {
        // `at` grows with the order rows were read, so this is a stable sort by number.
        self.entries.sort_unstable_by_key(|e| (e.key, e.at));
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let path = self
            .spill_dir
            .join(format!("smscast-import-{}-{run}", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| {
                format!(
                    "Cannot write a temporary file in {} (rows beyond --sort-memory are sorted there); nothing was imported. Free some space, set TMPDIR to a writable folder, or raise --sort-memory",
                    self.spill_dir.display()
                )
            })?;
        // Unlinked at once: the space comes back however the import ends.
        let _ = std::fs::remove_file(&path);
        let mut out = BufWriter::with_capacity(1 << 20, file);
        for e in &self.entries {
            let (district, carrier, attributes) = self.fields(e.at);
            out.write_all(&e.key.to_le_bytes())?;
            out.write_all(&district.to_le_bytes())?;
            out.write_all(&[carrier])?;
            match attributes {
                None => out.write_all(&NO_VALUE.to_le_bytes())?,
                Some(a) => {
                    out.write_all(&(a.len() as u32).to_le_bytes())?;
                    out.write_all(a)?;
                }
            }
        }
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        self.runs.push(file);
        self.entries.clear();
        self.arena.clear();
        Ok(())
    }

    fn fields(&self, at: u32) -> (u32, u8, Option<&[u8]>) {
        let at = at as usize;
        let word = |i: usize| u32::from_le_bytes(self.arena[i..i + 4].try_into().unwrap());
        let district = word(at);
        let carrier = self.arena[at + 4];
        let len = word(at + 5);
        let attributes = (len != NO_VALUE).then(|| &self.arena[at + 9..at + 9 + len as usize]);
        (district, carrier, attributes)
    }

    /// Merges everything in number order, first row of each number only, and hands the
    /// rows to `sink` in batches of at most `batch` rows. `sink` returns false to stop.
    pub fn finish(
        mut self,
        batch: usize,
        mut sink: impl FnMut(Vec<NewSubscriber>) -> bool,
    ) -> Result<Merged> {
        // `at` grows with the order rows were read, so this is a stable sort by number.
        self.entries.sort_unstable_by_key(|e| (e.key, e.at));
        let mut runs: Vec<RunReader> = std::mem::take(&mut self.runs)
            .into_iter()
            .map(|f| RunReader(BufReader::with_capacity(1 << 20, f)))
            .collect();
        // Sources: the runs in file order, then memory (the last rows read). Ties on the
        // number go to the lowest source, i.e. the earliest row.
        let memory = runs.len();
        let mut next_in_memory = 0;
        let mut heads: Vec<Option<Item>> = Vec::with_capacity(memory + 1);
        for r in &mut runs {
            heads.push(r.next()?);
        }
        heads.push(self.memory_item(&mut next_in_memory));
        let mut heap: BinaryHeap<Reverse<(u64, usize)>> = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|it| Reverse((it.key, i))))
            .collect();

        let mut merged = Merged::default();
        let mut out = Vec::with_capacity(batch);
        let mut last = None;
        while let Some(Reverse((key, source))) = heap.pop() {
            let item = heads[source].take().expect("a queued source has a head");
            heads[source] = if source == memory {
                self.memory_item(&mut next_in_memory)
            } else {
                runs[source].next()?
            };
            if let Some(h) = &heads[source] {
                heap.push(Reverse((h.key, source)));
            }
            if last == Some(key) {
                merged.duplicates += 1;
                continue;
            }
            last = Some(key);
            merged.unique += 1;
            out.push(self.subscriber(item)?);
            if out.len() >= batch && !sink(std::mem::replace(&mut out, Vec::with_capacity(batch))) {
                return Ok(merged);
            }
        }
        if !out.is_empty() {
            sink(out);
        }
        Ok(merged)
    }

    fn memory_item(&self, next: &mut usize) -> Option<Item> {
        let e = self.entries.get(*next)?;
        *next += 1;
        let (district, carrier, attributes) = self.fields(e.at);
        Some(Item {
            key: e.key,
            district,
            carrier,
            attributes: attributes.map(<[u8]>::to_vec),
        })
    }

    fn subscriber(&self, item: Item) -> Result<NewSubscriber> {
        let msisdn = Msisdn::from_u64(item.key).context("a sorted number was damaged")?;
        let named = match item.carrier {
            NO_CARRIER => None,
            c => Some(
                *Carrier::ALL
                    .get(c as usize)
                    .context("a sorted carrier was damaged")?,
            ),
        };
        Ok(NewSubscriber {
            msisdn,
            carrier: named.unwrap_or_else(|| msisdn.carrier()).as_str(),
            carrier_from_source: named.is_some(),
            district: (item.district != NO_VALUE)
                .then(|| Arc::clone(&self.districts[item.district as usize])),
            attributes: item
                .attributes
                .map(|a| String::from_utf8(a).context("attributes were damaged"))
                .transpose()?,
        })
    }
}

/// Reads back a spilled run.
struct RunReader(BufReader<File>);

impl RunReader {
    fn next(&mut self) -> Result<Option<Item>> {
        let mut key = [0u8; 8];
        match self.0.read_exact(&mut key) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e).context("Cannot read back a temporary import file"),
        }
        let mut word = [0u8; 4];
        self.0.read_exact(&mut word)?;
        let district = u32::from_le_bytes(word);
        let mut carrier = [0u8; 1];
        self.0.read_exact(&mut carrier)?;
        self.0.read_exact(&mut word)?;
        let len = u32::from_le_bytes(word);
        let attributes = if len == NO_VALUE {
            None
        } else {
            let mut a = vec![0; len as usize];
            self.0.read_exact(&mut a)?;
            Some(a)
        };
        Ok(Some(Item {
            key: u64::from_le_bytes(key),
            district,
            carrier: carrier[0],
            attributes,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn number(n: u32) -> Msisdn {
        Msisdn::from_canonical(&format!("8491{:07}", n % 10_000_000)).unwrap()
    }

    /// Pushes (number, tag) rows, merges, and returns (number, tag) in output order.
    fn sort(rows: &[(u32, u32)], budget: usize) -> (Vec<(u64, String)>, Merged, usize) {
        let mut s = SortedRows::new(budget);
        let district: Arc<str> = Arc::from("Tân An");
        for &(n, tag) in rows {
            let attrs = format!("{{\"tag\":\"{tag}\"}}");
            let d = (tag % 2 == 0).then_some(&district);
            let c = (tag % 3 == 0).then_some(Carrier::ALL[tag as usize % 8]);
            s.push(number(n), c, d, Some(&attrs)).unwrap();
        }
        let runs = s.runs();
        let mut out = Vec::new();
        let merged = s
            .finish(7, |batch| {
                for r in batch {
                    let c = if r.carrier_from_source {
                        r.carrier
                    } else {
                        "prefix"
                    };
                    out.push((r.msisdn.as_u64(), format!("{} {c}", r.attributes.unwrap())));
                }
                true
            })
            .unwrap();
        (out, merged, runs)
    }

    #[test]
    fn spilled_runs_merge_in_order_and_the_first_row_wins() {
        let rows: Vec<(u32, u32)> = (0..1000).map(|i| ((i * 7919) % 300, i)).collect();
        let (out, merged, runs) = sort(&rows, 2_000);
        assert!(runs > 5, "the tiny budget must spill ({runs} runs)");
        assert_eq!(
            merged,
            Merged {
                unique: 300,
                duplicates: 700
            }
        );
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
        for (key, attrs) in &out {
            let first = rows
                .iter()
                .find(|(n, _)| number(*n).as_u64() == *key)
                .unwrap();
            let c = if first.1 % 3 == 0 {
                Carrier::ALL[first.1 as usize % 8].as_str()
            } else {
                "prefix"
            };
            assert_eq!(attrs, &format!("{{\"tag\":\"{}\"}} {c}", first.1));
        }
    }

    proptest! {
        #[test]
        fn any_budget_gives_the_same_result(
            rows in prop::collection::vec((0u32..500, 0u32..1000), 0..400),
            budget in 1usize..4000,
        ) {
            let (spilled, m1, _) = sort(&rows, budget);
            let (in_memory, m2, runs) = sort(&rows, usize::MAX);
            prop_assert_eq!(runs, 0);
            prop_assert_eq!(m1, m2);
            prop_assert_eq!(spilled, in_memory);
        }
    }
}
