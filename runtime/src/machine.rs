//! The solver's view of a back end running one program: buffers by [`Slot`], kernels by
//! [`Role`].

use ndarray::{Array1, Array2};

use crate::backend::{Backend, ExecError};
use crate::kir::{Plan, Program, Role, Slot};
use crate::value::Value;

/// A back end bound to a program.
pub struct Machine<'a> {
    /// The program.
    pub program: &'a Program,
    backend: &'a mut dyn Backend,
}

/// A fault of the program/back end pair (a compiler or back-end bug, never user input).
fn missing(what: String) -> ExecError {
    ExecError::Backend(format!("the kernel program has no {what}"))
}

impl<'a> Machine<'a> {
    /// Binds a back end to a validated program.
    pub fn new(program: &'a Program, backend: &'a mut dyn Backend) -> Machine<'a> {
        Machine { program, backend }
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.program.plan
    }

    /// The back end's name.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// What the back end reports about itself (see [`Backend::info`]).
    pub fn backend_info(&self) -> serde_json::Value {
        self.backend.info()
    }

    /// Runs the kernel of a role.
    pub fn run(&mut self, role: Role) -> Result<(), ExecError> {
        let kernel = self
            .plan()
            .kernel(role)
            .ok_or_else(|| missing(format!("kernel for {}", role.name())))?;
        self.backend.run(kernel)
    }

    /// Sets the size r.
    pub fn set_rank(&mut self, rank: usize) {
        let dim = self.plan().rank;
        self.backend.bind_dim(dim, rank);
    }

    /// Sets the probe width p.
    pub fn set_probe(&mut self, width: usize) {
        let dim = self.plan().probe;
        self.backend.bind_dim(dim, width);
    }

    /// Binds a value to a slot.
    pub fn set(&mut self, slot: Slot, value: Value) -> Result<(), ExecError> {
        let id = self
            .plan()
            .slot(slot)
            .ok_or_else(|| missing(format!("slot {slot:?}")))?;
        self.backend.set(id, value)
    }

    /// Binds a matrix to a slot.
    pub fn set_matrix(&mut self, slot: Slot, value: Array2<f64>) -> Result<(), ExecError> {
        self.set(slot, Value::Matrix(value))
    }

    /// A buffer's value by id (the data a host-side step reads, e.g. observed entries).
    pub fn read_buffer(&self, id: crate::kir::BufId) -> Result<Value, ExecError> {
        self.backend.get(id)
    }

    fn get(&self, slot: Slot) -> Result<Value, ExecError> {
        let id = self
            .plan()
            .slot(slot)
            .ok_or_else(|| missing(format!("slot {slot:?}")))?;
        self.backend.get(id)
    }

    /// A scalar slot's value.
    pub fn scalar(&self, slot: Slot) -> Result<f64, ExecError> {
        match self.get(slot)? {
            Value::Scalar(s) => Ok(s),
            other => Err(ExecError::Backend(format!(
                "slot {slot:?} holds shape {:?}, not a scalar",
                other.shape()
            ))),
        }
    }

    /// A vector slot's value.
    pub fn vector(&self, slot: Slot) -> Result<Array1<f64>, ExecError> {
        match self.get(slot)? {
            Value::Vector(v) => Ok(v),
            other => Err(ExecError::Backend(format!(
                "slot {slot:?} holds shape {:?}, not a vector",
                other.shape()
            ))),
        }
    }

    /// A matrix slot's value.
    pub fn matrix(&self, slot: Slot) -> Result<Array2<f64>, ExecError> {
        match self.get(slot)? {
            Value::Matrix(m) => Ok(m),
            other => Err(ExecError::Backend(format!(
                "slot {slot:?} holds shape {:?}, not a matrix",
                other.shape()
            ))),
        }
    }

    /// `−∇ℓ · X` for a block of column-side vectors `[n, b]` (after `Residual`): `[m, b]`.
    pub fn apply_block(&mut self, x: &Array2<f64>) -> Result<Array2<f64>, ExecError> {
        self.set_probe(x.ncols());
        self.set_matrix(Slot::ProbeIn(1), x.clone())?;
        self.run(Role::Contract(0))?;
        self.matrix(Slot::ProbeOut(0))
    }

    /// `−∇ℓᵀ · Y` for a block of row-side vectors `[m, b]` (after `Residual`): `[n, b]`.
    pub fn apply_t_block(&mut self, y: &Array2<f64>) -> Result<Array2<f64>, ExecError> {
        self.set_probe(y.ncols());
        self.set_matrix(Slot::ProbeIn(0), y.clone())?;
        self.run(Role::Contract(1))?;
        self.matrix(Slot::ProbeOut(1))
    }

    /// `−∇ℓ` contracted with one probe vector on every mode but `k` (after `Residual`): the
    /// multilinear form's partial gradient the higher-order power method maximizes over.
    /// `probes[k]` is not read.
    pub fn contract(&mut self, k: usize, probes: &[Array1<f64>]) -> Result<Array1<f64>, ExecError> {
        self.set_probe(1);
        for (l, probe) in probes.iter().enumerate() {
            if l != k {
                let column = probe.clone().insert_axis(ndarray::Axis(1));
                self.set_matrix(Slot::ProbeIn(l as u8), column)?;
            }
        }
        self.run(Role::Contract(k as u8))?;
        Ok(self.matrix(Slot::ProbeOut(k as u8))?.column(0).to_owned())
    }
}
