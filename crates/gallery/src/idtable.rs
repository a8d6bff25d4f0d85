//! A compact hash index from a 16-byte id to a `u32` position: only the positions are
//! stored (4 bytes a slot, load ≤ 0.8), the keys are read back from the caller's arrays.
//! Linear probing with backward-shift deletion, so removals leave no tombstones.

const EMPTY: u32 = u32::MAX;

#[derive(Default, Clone)]
pub(crate) struct IdTable {
    slots: Vec<u32>,
    len: usize,
}

fn hash(k: &[u8; 16]) -> u64 {
    let a = u64::from_le_bytes(k[..8].try_into().unwrap());
    let b = u64::from_le_bytes(k[8..].try_into().unwrap());
    let mut h = a ^ b.rotate_left(29) ^ 0x9E37_79B9_7F4A_7C15;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl IdTable {
    fn home(&self, k: &[u8; 16]) -> usize {
        ((hash(k) as u128 * self.slots.len() as u128) >> 64) as usize
    }

    /// Bytes of memory held.
    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * 4
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get<'a>(&self, key: &[u8; 16], key_of: impl Fn(u32) -> &'a [u8; 16]) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let n = self.slots.len();
        let mut i = self.home(key);
        loop {
            let v = self.slots[i];
            if v == EMPTY {
                return None;
            }
            if key_of(v) == key {
                return Some(v);
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }

    /// Inserts `value` (the key must not be present; `key_of(value)` must return `key`).
    pub fn insert<'a>(&mut self, key: &[u8; 16], value: u32, key_of: impl Fn(u32) -> &'a [u8; 16]) {
        if (self.len + 1) * 5 > self.slots.len() * 4 {
            self.grow(&key_of);
        }
        let n = self.slots.len();
        let mut i = self.home(key);
        while self.slots[i] != EMPTY {
            i += 1;
            if i == n {
                i = 0;
            }
        }
        self.slots[i] = value;
        self.len += 1;
    }

    fn grow<'a>(&mut self, key_of: &impl Fn(u32) -> &'a [u8; 16]) {
        let new_cap = (self.slots.len() * 3 / 2)
            .max(16)
            .max((self.len + 1) * 3 / 2);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; new_cap]);
        for v in old.into_iter().filter(|&v| v != EMPTY) {
            let k = key_of(v);
            let mut i = self.home(k);
            while self.slots[i] != EMPTY {
                i = (i + 1) % new_cap;
            }
            self.slots[i] = v;
        }
    }

    /// Pre-sizes for `n` entries in total.
    pub fn reserve<'a>(&mut self, n: usize, key_of: impl Fn(u32) -> &'a [u8; 16]) {
        if n * 5 > self.slots.len() * 4 {
            let target = n * 5 / 4 + 1;
            while self.slots.len() < target {
                let before = self.slots.len();
                self.grow(&key_of);
                if self.slots.len() < target && self.slots.len() == before {
                    break;
                }
            }
        }
    }

    fn find_pos<'a>(&self, key: &[u8; 16], key_of: &impl Fn(u32) -> &'a [u8; 16]) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let n = self.slots.len();
        let mut i = self.home(key);
        loop {
            let v = self.slots[i];
            if v == EMPTY {
                return None;
            }
            if key_of(v) == key {
                return Some(i);
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }

    /// Changes the stored value for `key` (used when an entry moves position).
    pub fn set<'a>(&mut self, key: &[u8; 16], value: u32, key_of: impl Fn(u32) -> &'a [u8; 16]) {
        if let Some(p) = self.find_pos(key, &key_of) {
            self.slots[p] = value;
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove<'a>(
        &mut self,
        key: &[u8; 16],
        key_of: impl Fn(u32) -> &'a [u8; 16],
    ) -> Option<u32> {
        let mut i = self.find_pos(key, &key_of)?;
        let value = self.slots[i];
        let n = self.slots.len();
        self.slots[i] = EMPTY;
        self.len -= 1;
        let mut j = i;
        loop {
            j = (j + 1) % n;
            let v = self.slots[j];
            if v == EMPTY {
                break;
            }
            let k = self.home(key_of(v));
            // Move v back to the hole at i if its home is not cyclically in (i, j].
            let in_range = if i <= j {
                i < k && k <= j
            } else {
                i < k || k <= j
            };
            if !in_range {
                self.slots[i] = v;
                self.slots[j] = EMPTY;
                i = j;
            }
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn insert_get_remove_agree_with_hashmap() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let keys: Vec<[u8; 16]> = (0..5000).map(|_| rng.gen()).collect();
        let mut t = IdTable::default();
        let mut present = std::collections::HashSet::new();
        for step in 0..20000 {
            let i = rng.gen_range(0..keys.len()) as u32;
            let k = &keys[i as usize];
            if present.contains(&i) && step % 3 == 0 {
                assert_eq!(t.remove(k, |v| &keys[v as usize]), Some(i));
                present.remove(&i);
            } else if !present.contains(&i) {
                t.insert(k, i, |v| &keys[v as usize]);
                present.insert(i);
            }
        }
        assert_eq!(t.len(), present.len());
        for (i, k) in keys.iter().enumerate() {
            let got = t.get(k, |v| &keys[v as usize]);
            assert_eq!(got.is_some(), present.contains(&(i as u32)));
        }
    }
}
