//! Top-k selection that keeps the best score per key (per person, or per template).

/// One hit: score, grouping key, and position.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hit {
    pub score: f32,
    pub key: u32,
    pub slot: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct TopK {
    k: usize,
    items: Vec<Hit>, // sorted by score, best first
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k: k.max(1),
            items: Vec::with_capacity(k.max(1) + 1),
        }
    }

    /// Scores at or below this cannot enter.
    #[inline]
    pub fn floor(&self) -> f32 {
        if self.items.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.items[self.k - 1].score
        }
    }

    #[inline]
    pub fn push(&mut self, h: Hit) {
        if h.score <= self.floor() || h.score.is_nan() {
            return;
        }
        if let Some(p) = self.items.iter().position(|e| e.key == h.key) {
            if self.items[p].score >= h.score {
                return;
            }
            self.items.remove(p);
        }
        let pos = self.items.partition_point(|e| e.score >= h.score);
        self.items.insert(pos, h);
        self.items.truncate(self.k);
    }

    pub fn merge(mut self, other: TopK) -> TopK {
        for h in other.items {
            self.push(h);
        }
        self
    }

    pub fn into_vec(self) -> Vec<Hit> {
        self.items
    }
}
