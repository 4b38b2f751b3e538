//! Series identity: a metric is its namespace, its name and its dimensions, the
//! dimensions compared as a set (AWS treats `{A=1,B=2}` and `{B=2,A=1}` as one metric), so
//! they are kept sorted by name.

use serde::{Deserialize, Serialize};

/// One dimension of a metric.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dimension {
    /// The dimension's name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// What names one time series.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// e.g. `AWS/ECS`.
    pub namespace: String,
    /// e.g. `CPUUtilization`.
    pub metric_name: String,
    /// Sorted by name (then value), without duplicates of a name.
    dimensions: Vec<Dimension>,
}

impl SeriesKey {
    /// The key of `namespace`/`metric_name` with `dimensions` in any order. A name given
    /// twice keeps its last value: callers validate duplicates before (AWS refuses them).
    pub fn new(
        namespace: impl Into<String>,
        metric_name: impl Into<String>,
        mut dimensions: Vec<Dimension>,
    ) -> Self {
        dimensions.sort();
        dimensions.dedup_by(|later, earlier| later.name == earlier.name);
        Self {
            namespace: namespace.into(),
            metric_name: metric_name.into(),
            dimensions,
        }
    }

    /// The dimensions, sorted by name.
    pub fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }

    /// The dimensions as stored: a JSON array of `[name, value]` pairs, sorted.
    pub(crate) fn dimensions_text(&self) -> String {
        let pairs: Vec<[&str; 2]> = self
            .dimensions
            .iter()
            .map(|d| [d.name.as_str(), d.value.as_str()])
            .collect();
        serde_json::to_string(&pairs).unwrap_or_default()
    }

    /// The inverse of [`SeriesKey::dimensions_text`]; `None` for text it did not write.
    pub(crate) fn parse_dimensions(text: &str) -> Option<Vec<Dimension>> {
        let pairs: Vec<(String, String)> = serde_json::from_str(text).ok()?;
        Some(
            pairs
                .into_iter()
                .map(|(name, value)| Dimension { name, value })
                .collect(),
        )
    }

    /// Approximate heap bytes this key holds (the memory bench's accounting).
    pub fn heap_bytes(&self) -> usize {
        self.namespace.capacity()
            + self.metric_name.capacity()
            + self.dimensions.capacity() * std::mem::size_of::<Dimension>()
            + self
                .dimensions
                .iter()
                .map(|d| d.name.capacity() + d.value.capacity())
                .sum::<usize>()
    }
}

/// A ListMetrics dimension filter: a name, and optionally the value it must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DimensionFilter {
    /// The dimension's name.
    pub name: String,
    /// The value it must have (`None`: any value).
    pub value: Option<String>,
}

impl DimensionFilter {
    /// Whether `key` has the dimension this filter asks for.
    pub fn admits(&self, key: &SeriesKey) -> bool {
        key.dimensions()
            .iter()
            .any(|d| d.name == self.name && self.value.as_ref().is_none_or(|v| *v == d.value))
    }
}
