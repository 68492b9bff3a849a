//! Values of buffers: scalars, vectors, matrices and observed entries.

use ndarray::{Array1, Array2, ArrayViewD};

/// The observed entries of an `rows × cols` matrix, in row-major order (sorted by row, then
/// column, no duplicates).
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// Rows of the full matrix.
    pub rows: usize,
    /// Columns of the full matrix.
    pub cols: usize,
    /// Row of each entry.
    pub row: Vec<u32>,
    /// Column of each entry.
    pub col: Vec<u32>,
    /// Value of each entry.
    pub values: Array1<f64>,
}

impl Observed {
    /// Entries from triplets (any order; later duplicates win). Indices must be in range.
    pub fn from_triplets(rows: usize, cols: usize, mut entries: Vec<(u32, u32, f64)>) -> Observed {
        entries.sort_by_key(|(i, j, _)| (*i, *j));
        // Keep the last of equal (i, j): a stable sort keeps input order among equals.
        let mut kept: Vec<(u32, u32, f64)> = Vec::with_capacity(entries.len());
        for e in entries {
            match kept.last_mut() {
                Some(last) if last.0 == e.0 && last.1 == e.1 => *last = e,
                _ => kept.push(e),
            }
        }
        Observed {
            rows,
            cols,
            row: kept.iter().map(|e| e.0).collect(),
            col: kept.iter().map(|e| e.1).collect(),
            values: kept.iter().map(|e| e.2).collect(),
        }
    }

    /// The same pattern with other values.
    pub fn with_values(&self, values: Array1<f64>) -> Observed {
        Observed {
            rows: self.rows,
            cols: self.cols,
            row: self.row.clone(),
            col: self.col.clone(),
            values,
        }
    }

    /// Number of observed entries.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether nothing is observed.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// A buffer's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar.
    Scalar(f64),
    /// A vector.
    Vector(Array1<f64>),
    /// A matrix.
    Matrix(Array2<f64>),
    /// Observed entries of a matrix.
    Observed(Observed),
}

impl Value {
    /// The shape, as the kernel IR sees it (observed entries are `[nnz]`).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Value::Scalar(_) => Vec::new(),
            Value::Vector(v) => vec![v.len()],
            Value::Matrix(m) => vec![m.nrows(), m.ncols()],
            Value::Observed(o) => vec![o.len()],
        }
    }

    /// The elements as an n-dimensional view (a scalar is 0-dimensional).
    pub fn view_dyn(&self) -> Option<ArrayViewD<'_, f64>> {
        match self {
            Value::Scalar(_) => None,
            Value::Vector(v) => Some(v.view().into_dyn()),
            Value::Matrix(m) => Some(m.view().into_dyn()),
            Value::Observed(o) => Some(o.values.view().into_dyn()),
        }
    }
}
