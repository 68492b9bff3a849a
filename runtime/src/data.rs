//! Data files: NumPy `.npy` and `.npz`, CSV and Matrix Market `.mtx`.
//!
//! [`read_header`] reads only what a file says about its shape (for `hfc check`); [`read`]
//! reads the values, checks them (finite, not empty) and returns a dense matrix or, for data
//! a masked loss sees (`observed`), the observed entries: a coordinate `.mtx` lists them, and
//! in a dense file NaN marks an entry as missing. Every fault names the file and what is wrong.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayD};
use ndarray_npy::{NpzReader, ReadNpyExt};

use crate::value::{Observed, Value};

/// What is wrong with a data file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Fault {
    /// The file does not exist.
    #[error("file not found")]
    Missing,
    /// It could not be read.
    #[error("cannot read it: {0}")]
    Io(String),
    /// Its extension names no format hfc reads.
    #[error("unknown format (expected .npy, .npz, .csv or .mtx)")]
    UnknownFormat,
    /// Its header is truncated or malformed.
    #[error("malformed header: {0}")]
    Header(String),
    /// Its element type is not a real number type hfc reads.
    #[error("unsupported dtype `{0}` (expected float64, float32 or an integer type)")]
    Dtype(String),
    /// It is not a matrix.
    #[error("expected a matrix (2 dimensions), found {0} dimension(s)")]
    NotMatrix(usize),
    /// Its values could not be decoded.
    #[error("malformed data: {0}")]
    Body(String),
    /// A value is NaN or infinite.
    #[error("{value} at row {row}, column {col} (1-based); data must be finite{hint}")]
    NonFinite {
        /// The value (`NaN`, `inf`, `-inf`).
        value: String,
        /// Its row, 1-based.
        row: usize,
        /// Its column, 1-based.
        col: usize,
        /// What else the user may mean.
        hint: &'static str,
    },
    /// It holds no entries.
    #[error("the matrix is empty ({rows} x {cols}{what})")]
    Empty {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// `, no observed entries` when that is the fault.
        what: &'static str,
    },
    /// Its shape is not the declared one.
    #[error("shape {found} does not match the declaration {expected}")]
    ShapeMismatch {
        /// The file's shape.
        found: String,
        /// The declared shape.
        expected: String,
    },
    /// A tensor is not in a format that holds one, or has too few axes.
    #[error("expected a tensor of {expected} axes in a .npy file, found {found}")]
    NotTensor {
        /// The axes wanted.
        expected: usize,
        /// What the file holds.
        found: String,
    },
    /// An entry of a tensor is NaN or infinite.
    #[error("{value} at index [{index}] (1-based); data must be finite{hint}")]
    NonFiniteEntry {
        /// The value.
        value: String,
        /// Its index, 1-based, comma-separated.
        index: String,
        /// What else the user may mean.
        hint: &'static str,
    },
    /// An `.npz` archive holds several arrays and none has the data's name.
    #[error("the archive has no array named `{name}` (it has: {names})")]
    NoArray {
        /// The data's name.
        name: String,
        /// The archive's arrays.
        names: String,
    },
}

/// A fault in one file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {fault}", path.display())]
pub struct DataError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub fault: Fault,
}

/// What a file says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Rows and columns (or the array's shape).
    pub shape: Vec<usize>,
    /// Observed entries listed, for a coordinate `.mtx`.
    pub entries: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Npy,
    Npz,
    Csv,
    Mtx,
}

fn format_of(path: &Path) -> Option<Format> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "npy" => Format::Npy,
        "npz" => Format::Npz,
        "csv" => Format::Csv,
        "mtx" => Format::Mtx,
        _ => return None,
    })
}

fn open(path: &Path) -> Result<File, Fault> {
    File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Fault::Missing,
        _ => Fault::Io(e.to_string()),
    })
}

/// Reads only a file's header (for `.csv`, its rows and columns: the whole file is scanned).
pub fn read_header(path: &Path) -> Result<Header, DataError> {
    let at = |fault| DataError {
        path: path.to_path_buf(),
        fault,
    };
    let format = format_of(path).ok_or_else(|| at(Fault::UnknownFormat))?;
    let mut file = open(path).map_err(at)?;
    match format {
        Format::Npy => {
            let header = npy_header(&mut file).map_err(at)?;
            Ok(Header {
                shape: header.shape,
                entries: None,
            })
        }
        Format::Mtx => {
            let (mtx, _) = mtx_header(&mut BufReader::new(file)).map_err(at)?;
            Ok(Header {
                shape: vec![mtx.rows, mtx.cols],
                entries: mtx.coordinate.then_some(mtx.entries),
            })
        }
        Format::Npz | Format::Csv => {
            let value = read(path, "", false)?;
            Ok(Header {
                shape: value.shape(),
                entries: None,
            })
        }
    }
}

/// Reads a data file. `name` picks the array of an `.npz` archive that holds several;
/// `observed` asks for the observed entries (see the module notes).
pub fn read(path: &Path, name: &str, observed: bool) -> Result<Value, DataError> {
    let at = |fault| DataError {
        path: path.to_path_buf(),
        fault,
    };
    let format = format_of(path).ok_or_else(|| at(Fault::UnknownFormat))?;
    let file = open(path).map_err(at)?;
    let dense = match format {
        Format::Npy => read_npy(file).map_err(at)?,
        Format::Npz => read_npz(file, name).map_err(at)?,
        Format::Csv => read_csv(file).map_err(at)?,
        Format::Mtx => match read_mtx(file).map_err(at)? {
            Mtx::Dense(a) => a,
            Mtx::Coordinate(o) => return finish_observed(o, observed).map_err(at),
        },
    };
    finish_dense(dense, observed).map_err(at)
}

/// Reads a tensor of `order` axes from a `.npy` file (any real dtype). With `observed`, NaN
/// marks a missing entry and is kept; otherwise every entry must be finite.
pub fn read_tensor(path: &Path, order: usize, observed: bool) -> Result<ArrayD<f64>, DataError> {
    let at = |fault| DataError {
        path: path.to_path_buf(),
        fault,
    };
    if format_of(path) != Some(Format::Npy) {
        return Err(at(Fault::NotTensor {
            expected: order,
            found: "another format (tensors are read from .npy)".into(),
        }));
    }
    let mut file = open(path).map_err(at)?;
    let header = npy_header(&mut file).map_err(at)?;
    if !supported_dtype(&header.descr) {
        return Err(at(Fault::Dtype(header.descr)));
    }
    if header.shape.len() != order {
        return Err(at(Fault::NotTensor {
            expected: order,
            found: format!("{} axes", header.shape.len()),
        }));
    }
    let mut bytes = Vec::new();
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| at(Fault::Io(e.to_string())))?;
    let bytes = bytes.as_slice();
    let tensor = ArrayD::<f64>::read_npy(bytes)
        .or_else(|_| ArrayD::<f32>::read_npy(bytes).map(|a| a.mapv(f64::from)))
        .or_else(|_| ArrayD::<i64>::read_npy(bytes).map(|a| a.mapv(|v| v as f64)))
        .or_else(|_| ArrayD::<i32>::read_npy(bytes).map(|a| a.mapv(f64::from)))
        .map_err(|e| at(Fault::Body(e.to_string())))?;
    if tensor.is_empty() {
        return Err(at(Fault::Empty {
            rows: tensor.shape().first().copied().unwrap_or(0),
            cols: tensor.len(),
            what: "",
        }));
    }
    if let Some((index, v)) = tensor
        .indexed_iter()
        .find(|(_, v)| !(v.is_finite() || (observed && v.is_nan())))
    {
        let index: Vec<String> = ndarray::Dimension::slice(&index)
            .iter()
            .map(|i| (i + 1).to_string())
            .collect();
        let value = match non_finite(*v, 0, 0, !observed) {
            Fault::NonFinite { value, hint, .. } => (value, hint),
            _ => (v.to_string(), ""),
        };
        return Err(at(Fault::NonFiniteEntry {
            value: value.0,
            index: index.join(", "),
            hint: value.1,
        }));
    }
    if observed && tensor.iter().all(|v| v.is_nan()) {
        return Err(at(Fault::Empty {
            rows: tensor.shape().first().copied().unwrap_or(0),
            cols: tensor.len(),
            what: ", no observed entries",
        }));
    }
    Ok(tensor)
}

fn finish_dense(a: Array2<f64>, observed: bool) -> Result<Value, Fault> {
    let (rows, cols) = a.dim();
    if rows == 0 || cols == 0 {
        return Err(Fault::Empty {
            rows,
            cols,
            what: "",
        });
    }
    for ((i, j), v) in a.indexed_iter() {
        if !(v.is_finite() || (observed && v.is_nan())) {
            return Err(non_finite(*v, i, j, !observed));
        }
    }
    if !observed {
        return Ok(Value::Matrix(a));
    }
    let entries: Vec<(u32, u32, f64)> = a
        .indexed_iter()
        .filter(|(_, v)| !v.is_nan())
        .map(|((i, j), v)| (i as u32, j as u32, *v))
        .collect();
    finish_observed(Observed::from_triplets(rows, cols, entries), true)
}

fn finish_observed(o: Observed, observed: bool) -> Result<Value, Fault> {
    if o.rows == 0 || o.cols == 0 || o.is_empty() {
        return Err(Fault::Empty {
            rows: o.rows,
            cols: o.cols,
            what: ", no observed entries",
        });
    }
    for (k, v) in o.values.iter().enumerate() {
        if !v.is_finite() {
            return Err(non_finite(*v, o.row[k] as usize, o.col[k] as usize, false));
        }
    }
    if observed {
        return Ok(Value::Observed(o));
    }
    // A coordinate file fitted by a loss that sees every entry: the unlisted entries are 0.
    let mut a = Array2::zeros((o.rows, o.cols));
    for ((i, j), v) in o.row.iter().zip(&o.col).zip(o.values.iter()) {
        a[(*i as usize, *j as usize)] = *v;
    }
    Ok(Value::Matrix(a))
}

fn non_finite(v: f64, i: usize, j: usize, nan_hint: bool) -> Fault {
    Fault::NonFinite {
        value: if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        },
        row: i + 1,
        col: j + 1,
        hint: if nan_hint && v.is_nan() {
            " (to mark missing entries, fit the data with `loss ... on observed(Y)`)"
        } else {
            ""
        },
    }
}

struct NpyHeader {
    descr: String,
    shape: Vec<usize>,
}

/// Parses the header of a `.npy` file (format versions 1 to 3).
fn npy_header(file: &mut impl Read) -> Result<NpyHeader, Fault> {
    let mut magic = [0u8; 8];
    file.read_exact(&mut magic)
        .map_err(|_| Fault::Header("truncated before the magic string".into()))?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err(Fault::Header("not a NumPy file (bad magic string)".into()));
    }
    let len = match magic[6] {
        1 => {
            let mut b = [0u8; 2];
            file.read_exact(&mut b)
                .map_err(|_| Fault::Header("truncated header length".into()))?;
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            file.read_exact(&mut b)
                .map_err(|_| Fault::Header("truncated header length".into()))?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(Fault::Header(format!("unknown format version {v}"))),
    };
    if len > 1 << 20 {
        return Err(Fault::Header(format!("header length {len} is implausible")));
    }
    let mut text = vec![0u8; len];
    file.read_exact(&mut text)
        .map_err(|_| Fault::Header("truncated header".into()))?;
    let text = String::from_utf8_lossy(&text);
    let field = |key: &str| -> Result<String, Fault> {
        let at = text
            .find(&format!("'{key}'"))
            .ok_or_else(|| Fault::Header(format!("no '{key}' field")))?;
        let rest = &text[at + key.len() + 2..];
        let rest = rest
            .trim_start()
            .strip_prefix(':')
            .ok_or_else(|| Fault::Header(format!("malformed '{key}' field")))?;
        Ok(rest.trim_start().to_string())
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split_once('\''))
        .map(|(d, _)| d.to_string())
        .ok_or_else(|| Fault::Header("malformed 'descr' field".into()))?;
    let shape = field("shape")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.split_once(')'))
        .map(|(s, _)| s)
        .ok_or_else(|| Fault::Header("malformed 'shape' field".into()))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| Fault::Header(format!("malformed 'shape' entry `{s}`")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    field("fortran_order")?;
    Ok(NpyHeader { descr, shape })
}

/// The element types hfc reads, as NumPy spells them (byte order aside).
fn supported_dtype(descr: &str) -> bool {
    let kind = descr.trim_start_matches(['<', '>', '|', '=']);
    matches!(
        kind,
        "f8" | "f4" | "i8" | "i4" | "i2" | "i1" | "u1" | "u2" | "u4"
    )
}

fn read_npy(mut file: File) -> Result<Array2<f64>, Fault> {
    let header = npy_header(&mut file)?;
    if !supported_dtype(&header.descr) {
        return Err(Fault::Dtype(header.descr));
    }
    if header.shape.len() != 2 {
        return Err(Fault::NotMatrix(header.shape.len()));
    }
    let mut bytes = Vec::new();
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| Fault::Io(e.to_string()))?;
    decode_npy(&bytes)
}

/// Decodes a `.npy` image through ndarray-npy, as f64 or, failing that, other real types.
fn decode_npy(bytes: &[u8]) -> Result<Array2<f64>, Fault> {
    if let Ok(a) = Array2::<f64>::read_npy(bytes) {
        return Ok(a);
    }
    if let Ok(a) = Array2::<f32>::read_npy(bytes) {
        return Ok(a.mapv(f64::from));
    }
    if let Ok(a) = Array2::<i64>::read_npy(bytes) {
        return Ok(a.mapv(|v| v as f64));
    }
    if let Ok(a) = Array2::<i32>::read_npy(bytes) {
        return Ok(a.mapv(f64::from));
    }
    match Array2::<f64>::read_npy(bytes) {
        Ok(a) => Ok(a),
        Err(e) => Err(Fault::Body(e.to_string())),
    }
}

fn read_npz(file: File, name: &str) -> Result<Array2<f64>, Fault> {
    let mut npz = NpzReader::new(file).map_err(|e| Fault::Header(e.to_string()))?;
    let names = npz.names().map_err(|e| Fault::Header(e.to_string()))?;
    let pick = if names.len() == 1 {
        names[0].clone()
    } else {
        names
            .iter()
            .find(|n| n.trim_end_matches(".npy") == name)
            .cloned()
            .ok_or_else(|| Fault::NoArray {
                name: name.to_string(),
                names: names.join(", "),
            })?
    };
    // ndarray-npy reads by type; try the real types in turn.
    let attempt: Result<Array2<f64>, _> = npz.by_name(&pick);
    match attempt {
        Ok(a) => Ok(a),
        Err(first) => {
            if let Ok(a) = npz.by_name::<ndarray::OwnedRepr<f32>, ndarray::Ix2>(&pick) {
                return Ok(a.mapv(f64::from));
            }
            if let Ok(a) = npz.by_name::<ndarray::OwnedRepr<i64>, ndarray::Ix2>(&pick) {
                return Ok(a.mapv(|v| v as f64));
            }
            Err(Fault::Body(first.to_string()))
        }
    }
}

fn read_csv(file: File) -> Result<Array2<f64>, Fault> {
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for (k, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Fault::Io(e.to_string()))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed: Result<Vec<f64>, _> = fields.iter().map(|f| f.parse::<f64>()).collect();
        match parsed {
            Ok(values) => {
                if let Some(first) = rows.first()
                    && first.len() != values.len()
                {
                    return Err(Fault::Body(format!(
                        "line {} has {} fields, the first row has {}",
                        k + 1,
                        values.len(),
                        first.len()
                    )));
                }
                rows.push(values);
            }
            // A header row of names before any numbers is skipped.
            Err(_) if rows.is_empty() && fields.iter().all(|f| f.parse::<f64>().is_err()) => {}
            Err(_) => {
                let bad = fields.iter().find(|f| f.parse::<f64>().is_err());
                return Err(Fault::Body(format!(
                    "line {}: `{}` is not a number",
                    k + 1,
                    bad.unwrap_or(&"")
                )));
            }
        }
    }
    let cols = rows.first().map_or(0, Vec::len);
    let n = rows.len();
    Array2::from_shape_vec((n, cols), rows.into_iter().flatten().collect())
        .map_err(|e| Fault::Body(e.to_string()))
}

struct MtxHeader {
    coordinate: bool,
    symmetric: bool,
    rows: usize,
    cols: usize,
    entries: usize,
}

enum Mtx {
    Dense(Array2<f64>),
    Coordinate(Observed),
}

/// Reads a Matrix Market banner, comments and size line.
fn mtx_header(reader: &mut impl BufRead) -> Result<(MtxHeader, usize), Fault> {
    let mut banner = String::new();
    reader
        .read_line(&mut banner)
        .map_err(|e| Fault::Io(e.to_string()))?;
    let words: Vec<String> = banner
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    if words.first().map(String::as_str) != Some("%%matrixmarket") || words.len() < 5 {
        return Err(Fault::Header(
            "expected a banner `%%MatrixMarket matrix coordinate|array real general`".into(),
        ));
    }
    if words[1] != "matrix" {
        return Err(Fault::Header(format!(
            "object `{}` is not `matrix`",
            words[1]
        )));
    }
    let coordinate = match words[2].as_str() {
        "coordinate" => true,
        "array" => false,
        other => return Err(Fault::Header(format!("unknown layout `{other}`"))),
    };
    if !matches!(words[3].as_str(), "real" | "integer" | "double") {
        return Err(Fault::Dtype(words[3].clone()));
    }
    let symmetric = match words[4].as_str() {
        "general" => false,
        "symmetric" => true,
        other => return Err(Fault::Header(format!("unsupported symmetry `{other}`"))),
    };
    let mut line_no = 1;
    let mut line = String::new();
    loop {
        line.clear();
        line_no += 1;
        let read = reader
            .read_line(&mut line)
            .map_err(|e| Fault::Io(e.to_string()))?;
        if read == 0 {
            return Err(Fault::Header("no size line".into()));
        }
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('%') {
            break;
        }
    }
    let sizes: Result<Vec<usize>, _> = line.split_whitespace().map(str::parse).collect();
    let sizes = sizes.map_err(|_| Fault::Header(format!("line {line_no}: malformed size line")))?;
    let (rows, cols, entries) = match (coordinate, sizes.as_slice()) {
        (true, [r, c, e]) => (*r, *c, *e),
        (false, [r, c]) => (*r, *c, r * c),
        _ => {
            return Err(Fault::Header(format!(
                "line {line_no}: expected {} numbers on the size line",
                if coordinate { 3 } else { 2 }
            )));
        }
    };
    Ok((
        MtxHeader {
            coordinate,
            symmetric,
            rows,
            cols,
            entries,
        },
        line_no,
    ))
}

fn read_mtx(file: File) -> Result<Mtx, Fault> {
    let mut reader = BufReader::new(file);
    let (h, mut line_no) = mtx_header(&mut reader)?;
    let mut values: Vec<Vec<f64>> = Vec::with_capacity(h.entries);
    for line in reader.lines() {
        line_no += 1;
        let line = line.map_err(|e| Fault::Io(e.to_string()))?;
        let t = line.trim();
        if t.is_empty() || t.starts_with('%') {
            continue;
        }
        let nums: Result<Vec<f64>, _> = t.split_whitespace().map(str::parse::<f64>).collect();
        let nums = nums.map_err(|_| Fault::Body(format!("line {line_no}: `{t}` is malformed")))?;
        let want = if h.coordinate { 3 } else { 1 };
        if nums.len() != want {
            return Err(Fault::Body(format!(
                "line {line_no}: expected {want} number(s), found {}",
                nums.len()
            )));
        }
        if h.coordinate {
            let (i, j) = (nums[0], nums[1]);
            let ok = |x: f64, n: usize| x.fract() == 0.0 && x >= 1.0 && x <= n as f64;
            if !ok(i, h.rows) || !ok(j, h.cols) {
                return Err(Fault::Body(format!(
                    "line {line_no}: index ({i}, {j}) is outside the {} x {} matrix",
                    h.rows, h.cols
                )));
            }
        }
        values.push(nums);
    }
    if values.len() != h.entries {
        return Err(Fault::Body(format!(
            "the size line promises {} entries, the file has {} (truncated?)",
            h.entries,
            values.len()
        )));
    }
    if h.coordinate {
        let mut entries = Vec::with_capacity(values.len() * if h.symmetric { 2 } else { 1 });
        for v in &values {
            let (i, j) = (v[0] as u32 - 1, v[1] as u32 - 1);
            entries.push((i, j, v[2]));
            if h.symmetric && i != j {
                entries.push((j, i, v[2]));
            }
        }
        Ok(Mtx::Coordinate(Observed::from_triplets(
            h.rows, h.cols, entries,
        )))
    } else {
        // Array layout lists the entries column by column.
        let mut a = Array2::zeros((h.rows, h.cols));
        for (k, v) in values.iter().enumerate() {
            a[(k % h.rows.max(1), k / h.rows.max(1))] = v[0];
        }
        Ok(Mtx::Dense(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use ndarray_npy::WriteNpyExt;

    fn temp(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hfc-data-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn npy_bytes<T: ndarray_npy::WritableElement>(a: &Array2<T>) -> Vec<u8> {
        let mut out = Vec::new();
        a.write_npy(&mut out).unwrap();
        out
    }

    #[test]
    fn npy_f64_f32_and_fortran_order() {
        let a = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let p = temp("a.npy", &npy_bytes(&a));
        assert_eq!(read(&p, "", false).unwrap(), Value::Matrix(a.clone()));
        assert_eq!(read_header(&p).unwrap().shape, vec![2, 3]);
        let p = temp("b.npy", &npy_bytes(&a.mapv(|v| v as f32)));
        assert_eq!(read(&p, "", false).unwrap(), Value::Matrix(a.clone()));
        // Fortran order: ndarray-npy writes a transposed view's memory as is.
        let t = a.t().to_owned().reversed_axes();
        let p = temp("c.npy", &npy_bytes(&t));
        assert_eq!(read(&p, "", false).unwrap(), Value::Matrix(a));
    }

    #[test]
    fn faults_name_what_is_wrong() {
        let fault = |p: &Path| read(p, "", false).unwrap_err().fault;
        assert_eq!(fault(Path::new("/nonexistent/x.npy")), Fault::Missing);
        assert!(matches!(
            fault(&temp("bad.npy", b"\x93NUMP")),
            Fault::Header(_)
        ));
        let mut truncated = npy_bytes(&array![[1.0, 2.0], [3.0, 4.0]]);
        truncated.truncate(truncated.len() - 3);
        assert!(matches!(fault(&temp("t.npy", &truncated)), Fault::Body(_)));
        let p = temp("n.npy", &npy_bytes(&array![[1.0, f64::NAN]]));
        assert!(matches!(fault(&p), Fault::NonFinite { row: 1, col: 2, .. }));
        let p = temp("e.csv", b"");
        assert!(matches!(fault(&p), Fault::Empty { .. }));
        let p = temp("r.csv", b"1,2\n3\n");
        assert!(matches!(fault(&p), Fault::Body(_)));
        let p = temp("u.npy", &npy_bytes(&array![[true, false]]));
        assert!(matches!(fault(&p), Fault::Dtype(_)));
    }

    #[test]
    fn csv_and_matrix_market() {
        let p = temp("a.csv", b"x,y\n1,2\n3, 4.5\n");
        assert_eq!(
            read(&p, "", false).unwrap(),
            Value::Matrix(array![[1.0, 2.0], [3.0, 4.5]])
        );
        let p = temp(
            "c.mtx",
            b"%%MatrixMarket matrix coordinate real general\n% comment\n2 3 2\n1 3 5.0\n2 1 -1\n",
        );
        let Value::Observed(o) = read(&p, "", true).unwrap() else {
            panic!("expected observed entries")
        };
        assert_eq!(
            (o.rows, o.cols, o.row.clone(), o.col.clone()),
            (2, 3, vec![0, 1], vec![2, 0])
        );
        assert_eq!(read_header(&p).unwrap().entries, Some(2));
        assert_eq!(
            read(&p, "", false).unwrap(),
            Value::Matrix(array![[0.0, 0.0, 5.0], [-1.0, 0.0, 0.0]])
        );
        let p = temp(
            "d.mtx",
            b"%%MatrixMarket matrix array real general\n2 2\n1\n2\n3\n4\n",
        );
        assert_eq!(
            read(&p, "", false).unwrap(),
            Value::Matrix(array![[1.0, 3.0], [2.0, 4.0]])
        );
        // Dense data with NaN as missing, for a masked loss.
        let p = temp("m.csv", b"1,nan\n3,4\n");
        let Value::Observed(o) = read(&p, "", true).unwrap() else {
            panic!("expected observed entries")
        };
        assert_eq!(o.len(), 3);
    }
}
