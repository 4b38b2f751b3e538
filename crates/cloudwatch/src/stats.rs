//! Statistics: the StatisticSet every bucket keeps (SampleCount, Sum, Minimum, Maximum,
//! from which Average follows), and the sketch that answers percentiles.
//!
//! Percentiles are approximate, as AWS's are for large sets: each bucket keeps a
//! logarithmic histogram of its raw values (bin `i` holds values in (γ^(i-1), γ^i] with
//! γ = 1.02, negatives mirrored, zero apart), so any percentile is answered within 1 %
//! relative error, and clamped to the bucket's exact minimum and maximum (p0 and p100 are
//! exact). Sketches merge by adding bins, which is what rollups and period aggregation
//! need. Values put as a StatisticSet (StatisticValues) carry no distribution: they count
//! in SampleCount/Sum/Minimum/Maximum but not in percentiles, and a bucket with no raw
//! values answers no percentile, as AWS answers none for such data.

use std::collections::BTreeMap;

/// γ of the sketch's bins: a value is reported within (γ-1)/(γ+1) ≈ 1 % of itself.
const GAMMA: f64 = 1.02;
/// Values this close to zero share the zero bin (below any value a client can mean).
const MIN_MAGNITUDE: f64 = 1e-9;

/// SampleCount, Sum, Minimum and Maximum of a set of values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StatisticSet {
    /// How many values (a StatisticSet's SampleCount may be fractional: AWS allows it).
    pub sample_count: f64,
    /// Their sum.
    pub sum: f64,
    /// The least.
    pub minimum: f64,
    /// The greatest.
    pub maximum: f64,
}

impl StatisticSet {
    /// `count` copies of `value`.
    pub fn of(value: f64, count: f64) -> Self {
        Self {
            sample_count: count,
            sum: value * count,
            minimum: value,
            maximum: value,
        }
    }

    /// Both sets together.
    pub fn merge(&mut self, other: &Self) {
        self.sample_count += other.sample_count;
        self.sum += other.sum;
        self.minimum = self.minimum.min(other.minimum);
        self.maximum = self.maximum.max(other.maximum);
    }

    /// Sum ÷ SampleCount (0 for an empty set, which is never stored).
    pub fn average(&self) -> f64 {
        if self.sample_count > 0.0 {
            self.sum / self.sample_count
        } else {
            0.0
        }
    }
}

/// A mergeable logarithmic histogram of raw values (see the module docs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sketch {
    /// Bin index → count; negative values use negative indices offset below
    /// [`NEG_BASE`], zero uses bin 0.
    bins: BTreeMap<i32, f64>,
}

/// Negative values' bins are `NEG_BASE - i` so that bin order is value order.
const NEG_BASE: i32 = -1_000_000;

impl Sketch {
    /// Adds `count` occurrences of `value`.
    pub fn add(&mut self, value: f64, count: f64) {
        *self.bins.entry(bin_of(value)).or_insert(0.0) += count;
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        for (bin, count) in &other.bins {
            *self.bins.entry(*bin).or_insert(0.0) += count;
        }
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.bins.is_empty()
    }

    /// The `p`th percentile (0–100), clamped to `[min, max]`; `None` when empty.
    pub fn percentile(&self, p: f64, min: f64, max: f64) -> Option<f64> {
        let total: f64 = self.bins.values().sum();
        if total <= 0.0 {
            return None;
        }
        // The ends are known exactly.
        if p <= 0.0 {
            return Some(min);
        }
        if p >= 100.0 {
            return Some(max);
        }
        // The rank of the value asked for, 1-based, as "nearest rank" defines it.
        let rank = (p / 100.0 * total).ceil().max(1.0);
        let mut seen = 0.0;
        for (bin, count) in &self.bins {
            seen += count;
            if seen >= rank {
                return Some(value_of(*bin).clamp(min, max));
            }
        }
        Some(max)
    }

    /// The stored form: 12 bytes per bin (i32 index, f64 count, little-endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bins.len() * 12);
        for (bin, count) in &self.bins {
            out.extend_from_slice(&bin.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
        out
    }

    /// The inverse of [`Sketch::encode`]; a truncated tail is ignored (it cannot be
    /// written: rows are written whole in one transaction).
    pub fn decode(bytes: &[u8]) -> Self {
        let mut bins = BTreeMap::new();
        for chunk in bytes.chunks_exact(12) {
            let (b, c) = chunk.split_at(4);
            let (Ok(b), Ok(c)) = (<[u8; 4]>::try_from(b), <[u8; 8]>::try_from(c)) else {
                continue;
            };
            bins.insert(i32::from_le_bytes(b), f64::from_le_bytes(c));
        }
        Self { bins }
    }
}

fn bin_of(value: f64) -> i32 {
    let magnitude = value.abs();
    if magnitude < MIN_MAGNITUDE {
        return 0;
    }
    // |value| ≤ 2^360 (validated), so the index stays within ±15,000.
    #[allow(clippy::cast_possible_truncation)]
    let i = ((magnitude.ln() - MIN_MAGNITUDE.ln()) / GAMMA.ln()).ceil() as i32 + 1;
    if value > 0.0 {
        i
    } else {
        NEG_BASE - i
    }
}

/// A bin's representative value: the midpoint that bounds the relative error.
fn value_of(bin: i32) -> f64 {
    if bin == 0 {
        return 0.0;
    }
    let (i, sign) = if bin > 0 {
        (bin, 1.0)
    } else {
        (NEG_BASE - bin, -1.0)
    };
    let upper = MIN_MAGNITUDE * GAMMA.powi(i - 1);
    sign * 2.0 * upper / (GAMMA + 1.0)
}

/// A statistic a client asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Statistic {
    /// `SampleCount`
    SampleCount,
    /// `Average`
    Average,
    /// `Sum`
    Sum,
    /// `Minimum`
    Minimum,
    /// `Maximum`
    Maximum,
    /// `pNN.NN`, 0–100.
    Percentile(f64),
}

impl Statistic {
    /// One of the five named statistics.
    pub fn named(name: &str) -> Option<Self> {
        Some(match name {
            "SampleCount" => Self::SampleCount,
            "Average" => Self::Average,
            "Sum" => Self::Sum,
            "Minimum" => Self::Minimum,
            "Maximum" => Self::Maximum,
            _ => return None,
        })
    }

    /// `pNN` or `pNN.NN` (at most two decimals, 0–100), as AWS accepts them.
    pub fn percentile(name: &str) -> Option<Self> {
        let number = name.strip_prefix('p')?;
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || whole.len() > 3 || frac.len() > 2 || !digits(whole) || !digits(frac)
        {
            return None;
        }
        if number.ends_with('.') {
            return None;
        }
        let p: f64 = number.parse().ok()?;
        (0.0..=100.0).contains(&p).then_some(Self::Percentile(p))
    }

    /// A named statistic or a percentile (GetMetricData's `Stat`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::named(name).or_else(|| Self::percentile(name))
    }

    /// Its value over `set` (and `sketch`, for percentiles).
    pub fn compute(self, set: &StatisticSet, sketch: &Sketch) -> Option<f64> {
        match self {
            Self::SampleCount => Some(set.sample_count),
            Self::Average => Some(set.average()),
            Self::Sum => Some(set.sum),
            Self::Minimum => Some(set.minimum),
            Self::Maximum => Some(set.maximum),
            Self::Percentile(p) => sketch.percentile(p, set.minimum, set.maximum),
        }
    }
}
