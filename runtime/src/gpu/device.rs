//! The wgpu executor: adapter and device ([`GpuContext`], shareable between programs), and
//! [`GpuBackend`], which runs one program's shaders behind the [`Backend`] trait.
//!
//! Buffers live on the device between calls: `set` uploads, `run` records every dispatch of a
//! kernel into one command encoder and submits it without waiting, and only `get` reads back
//! (and waits). A buffer is (re)allocated when its extents outgrow it (the size r changes
//! during a solve); bind groups are cached until a buffer they name is replaced.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ndarray::{Array1, Array2};

use super::wgsl::{self, Aux, Binding, Grid, MAX_PARTIALS, MAX_WORKGROUPS, TILE, WORKGROUP};
use super::{GpuError, Precision};
use crate::backend::{Backend, ExecError};
use crate::kir::{BufId, BufferKind, DimId, KernelId, Program};
use crate::value::{Observed, Value};

/// An opened adapter and device. Opening one costs tens of milliseconds on a software
/// adapter; programs (and tests) can share it.
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    f64: bool,
    errors: Arc<Mutex<Vec<String>>>,
}

fn device_type(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete_gpu",
        wgpu::DeviceType::IntegratedGpu => "integrated_gpu",
        wgpu::DeviceType::VirtualGpu => "virtual_gpu",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    }
}

/// Preference among adapters: discrete, integrated, virtual, other, then software; Vulkan
/// first among equals (it has f64 on lavapipe, GL does not).
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let api = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (kind, api)
}

impl GpuContext {
    /// Opens the preferred adapter: `HFC_GPU_ADAPTER=<substring>` chooses by name
    /// (case-insensitive), otherwise a discrete GPU if there is one, else any, the software
    /// adapter last. `WGPU_BACKEND` restricts the APIs tried.
    pub fn open() -> Result<Arc<GpuContext>, GpuError> {
        let wanted = std::env::var("HFC_GPU_ADAPTER")
            .ok()
            .filter(|s| !s.trim().is_empty());
        pollster::block_on(Self::open_async(wanted))
    }

    /// The device the tests and benchmarks of a process share, opened once, when it can run
    /// `precision`. `Err` says why not, for the caller to report a skip; with
    /// `HFC_REQUIRE_GPU` set (CI, where lavapipe is installed) a missing adapter or missing
    /// f64 support is a failure instead, and this panics with the reason.
    pub fn shared_for_tests(precision: Precision) -> Result<Arc<GpuContext>, String> {
        static SHARED: std::sync::OnceLock<Result<Arc<GpuContext>, String>> =
            std::sync::OnceLock::new();
        let required = std::env::var_os("HFC_REQUIRE_GPU").is_some();
        let context = SHARED
            .get_or_init(|| GpuContext::open().map_err(|e| format!("no GPU adapter ({e})")))
            .clone();
        let why = match context {
            Ok(ctx) if precision == Precision::F64 && !ctx.has_f64() => {
                "the adapter has no SHADER_F64".to_string()
            }
            Ok(ctx) => return Ok(ctx),
            Err(why) => why,
        };
        assert!(!required, "HFC_REQUIRE_GPU is set but {why}");
        Err(why)
    }

    async fn open_async(wanted: Option<String>) -> Result<Arc<GpuContext>, GpuError> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::PRIMARY | wgpu::Backends::GL;
        let desc = desc.with_env();
        let backends = desc.backends;
        let instance = wgpu::Instance::new(desc);
        let adapters = instance.enumerate_adapters(backends).await;
        if adapters.is_empty() {
            return Err(GpuError::NoAdapter(format!(
                "wgpu enumerated no adapter on the APIs {backends:?}"
            )));
        }
        let adapter = match &wanted {
            Some(name) => {
                let needle = name.to_lowercase();
                let found = adapters
                    .iter()
                    .filter(|a| a.get_info().name.to_lowercase().contains(&needle))
                    .min_by_key(|a| rank(&a.get_info()));
                match found {
                    Some(a) => a.clone(),
                    None => {
                        let names: Vec<String> = adapters
                            .iter()
                            .map(|a| {
                                let i = a.get_info();
                                format!("`{}` ({:?})", i.name, i.backend)
                            })
                            .collect();
                        return Err(GpuError::NoAdapter(format!(
                            "HFC_GPU_ADAPTER=`{name}` matches none of {}",
                            names.join(", ")
                        )));
                    }
                }
            }
            None => adapters
                .iter()
                .min_by_key(|a| rank(&a.get_info()))
                .cloned()
                .ok_or_else(|| GpuError::NoAdapter("no adapter".into()))?,
        };
        let info = adapter.get_info();
        let f64 = adapter.features().contains(wgpu::Features::SHADER_F64);
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("hfc"),
                required_features: if f64 {
                    wgpu::Features::SHADER_F64
                } else {
                    wgpu::Features::empty()
                },
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Device(format!("{}: {e}", info.name)))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&errors);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut list) = sink.lock() {
                list.push(e.to_string());
            }
        }));
        Ok(Arc::new(GpuContext {
            device,
            queue,
            info,
            limits,
            f64,
            errors,
        }))
    }

    /// Whether shaders may use f64.
    pub fn has_f64(&self) -> bool {
        self.f64
    }

    /// The adapter's name.
    pub fn adapter_name(&self) -> &str {
        &self.info.name
    }

    /// The adapter's name, type, API and driver, for the report.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "adapter": self.info.name,
            "device_type": device_type(self.info.device_type),
            "api": format!("{:?}", self.info.backend).to_lowercase(),
            "driver": self.info.driver,
            "driver_info": self.info.driver_info,
            "shader_f64": self.f64,
            "max_storage_binding_bytes": self.limits.max_storage_buffer_binding_size,
        })
    }

    /// The first error the device reported since the last call, if any.
    fn take_error(&self) -> Option<String> {
        let mut list = self.errors.lock().ok()?;
        let first = list.first().cloned();
        list.clear();
        first
    }
}

/// A device buffer and its size in bytes.
struct DeviceBuffer {
    buffer: wgpu::Buffer,
    bytes: u64,
}

/// An observed pattern: host indices and their device arrays.
struct Pattern {
    rows: usize,
    cols: usize,
    row: Vec<u32>,
    col: Vec<u32>,
    aux: BTreeMap<Aux, wgpu::Buffer>,
}

struct Pipelines {
    layout: wgpu::BindGroupLayout,
    passes: Vec<wgpu::ComputePipeline>,
}

/// Runs a validated program's kernels on a GPU.
pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    program: Arc<Program>,
    precision: Precision,
    shaders: wgsl::Shaders,
    pipelines: Vec<Pipelines>,
    extents: Vec<Option<usize>>,
    dims: wgpu::Buffer,
    dims_dirty: bool,
    buffers: Vec<Option<DeviceBuffer>>,
    /// The shape of each buffer's value at its last write.
    shapes: Vec<Option<Vec<usize>>>,
    patterns: Vec<Option<Pattern>>,
    partials: wgpu::Buffer,
    bind_groups: Vec<Option<(u64, wgpu::BindGroup)>>,
    generation: u64,
    compile_seconds: f64,
}

fn backend_error(e: GpuError) -> ExecError {
    ExecError::Backend(e.to_string())
}

impl GpuBackend {
    /// Compiles every shader of a validated program on an opened device.
    pub fn new(
        program: &Program,
        ctx: Arc<GpuContext>,
        precision: Precision,
    ) -> Result<GpuBackend, GpuError> {
        if precision == Precision::F64 && !ctx.f64 {
            return Err(GpuError::NoF64(ctx.info.name.clone()));
        }
        let clock = Instant::now();
        let shaders = wgsl::shaders(program, precision)?;
        let device = &ctx.device;
        let mut pipelines = Vec::new();
        for shader in &shaders.shaders {
            // naga's own checks first: a writer bug becomes an error, never a device fault.
            super::validate_wgsl(&shader.label, &shader.source, precision)?;
            let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&shader.label),
                source: wgpu::ShaderSource::Wgsl(shader.source.as_str().into()),
            });
            let entries: Vec<wgpu::BindGroupLayoutEntry> = shader
                .bindings
                .iter()
                .enumerate()
                .map(|(k, b)| wgpu::BindGroupLayoutEntry {
                    binding: k as u32,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage {
                            read_only: !matches!(
                                b,
                                Binding::Buffer { writable: true, .. } | Binding::Partials
                            ),
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                })
                .collect();
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(&shader.label),
                entries: &entries,
            });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(&shader.label),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let passes = shader
                .passes
                .iter()
                .map(|pass| {
                    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some(&shader.label),
                        layout: Some(&pipeline_layout),
                        module: &module,
                        entry_point: Some(pass.entry),
                        compilation_options: Default::default(),
                        cache: None,
                    })
                })
                .collect();
            if let Some(e) = pollster::block_on(scope.pop()) {
                return Err(GpuError::Shader {
                    label: shader.label.clone(),
                    message: e.to_string(),
                });
            }
            pipelines.push(Pipelines { layout, passes });
        }
        let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        let dims = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dims"),
            size: (4 * program.dims.len() as u64).max(16).next_multiple_of(16),
            usage: storage,
            mapped_at_creation: false,
        });
        let partials = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("partials"),
            size: u64::from(MAX_PARTIALS) * precision.bytes(),
            usage: storage,
            mapped_at_creation: false,
        });
        let nbuf = program.buffers.len();
        let nshader = shaders.shaders.len();
        Ok(GpuBackend {
            ctx,
            program: Arc::new(program.clone()),
            precision,
            shaders,
            pipelines,
            extents: program.initial_extents(),
            dims,
            dims_dirty: true,
            buffers: (0..nbuf).map(|_| None).collect(),
            shapes: vec![None; nbuf],
            patterns: (0..nbuf).map(|_| None).collect(),
            partials,
            bind_groups: (0..nshader).map(|_| None).collect(),
            generation: 0,
            compile_seconds: clock.elapsed().as_secs_f64(),
        })
    }

    /// The precision its shaders compute in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Waits until every submitted dispatch has finished (for timing).
    pub fn wait(&self) -> Result<(), ExecError> {
        self.ctx
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| ExecError::Backend(format!("GPU device error: {e}")))?;
        self.check()
    }

    fn check(&self) -> Result<(), ExecError> {
        match self.ctx.take_error() {
            Some(e) => Err(ExecError::Backend(format!("GPU device error: {e}"))),
            None => Ok(()),
        }
    }

    fn name(&self, id: BufId) -> String {
        self.program.buffer(id).name.clone()
    }

    fn extent(&self, d: DimId) -> Result<usize, ExecError> {
        self.extents[d.0 as usize].ok_or_else(|| {
            ExecError::Backend(format!(
                "dimension {} is not bound",
                self.program.dim(d).name
            ))
        })
    }

    /// The shape a buffer has under the current extents.
    fn expected(&self, id: BufId) -> Result<Vec<usize>, ExecError> {
        self.program
            .buffer(id)
            .shape
            .iter()
            .map(|d| self.extent(*d))
            .collect()
    }

    /// Makes sure a buffer can hold `elements` scalars.
    fn ensure(&mut self, id: BufId, elements: usize) -> Result<(), ExecError> {
        let bytes = elements as u64 * self.precision.bytes();
        let limit = self
            .ctx
            .limits
            .max_storage_buffer_binding_size
            .min(self.ctx.limits.max_buffer_size);
        if bytes > limit {
            return Err(backend_error(GpuError::TooLarge {
                name: self.name(id),
                bytes,
                limit,
            }));
        }
        let slot = &mut self.buffers[id.0 as usize];
        if slot.as_ref().is_some_and(|b| b.bytes >= bytes) {
            return Ok(());
        }
        let size = bytes.max(16).next_multiple_of(16);
        let buffer = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(&self.program.buffer(id).name),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        *slot = Some(DeviceBuffer {
            buffer,
            bytes: size,
        });
        self.generation += 1;
        Ok(())
    }

    fn upload_u32(&self, label: &str, data: &[u32]) -> wgpu::Buffer {
        let size = (4 * data.len() as u64).max(16).next_multiple_of(16);
        let buffer = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if !data.is_empty() {
            self.ctx
                .queue
                .write_buffer(&buffer, 0, bytemuck::cast_slice(data));
        }
        buffer
    }

    /// Builds the index arrays of an observed pattern (once per pattern).
    fn bind_pattern(&mut self, id: BufId, obs: &Observed) -> Result<(), ExecError> {
        if let Some(p) = &self.patterns[id.0 as usize]
            && p.rows == obs.rows
            && p.cols == obs.cols
            && p.row == obs.row
            && p.col == obs.col
        {
            return Ok(());
        }
        let name = self.name(id);
        let nnz = obs.len();
        if obs.row.len() != nnz || obs.col.len() != nnz {
            return Err(ExecError::Backend(format!(
                "observed %{name}: index arrays and values differ in length"
            )));
        }
        let sorted = obs
            .row
            .iter()
            .zip(&obs.col)
            .zip(obs.row.iter().zip(&obs.col).skip(1))
            .all(|(a, b)| a < b);
        let in_range = obs
            .row
            .iter()
            .zip(&obs.col)
            .all(|(i, j)| (*i as usize) < obs.rows && (*j as usize) < obs.cols);
        if !sorted || !in_range || u32::try_from(nnz).is_err() {
            return Err(ExecError::Backend(format!(
                "observed %{name}: entries must be in range, sorted by row then column, without duplicates"
            )));
        }
        let mut row_ptr = vec![0u32; obs.rows + 1];
        let mut col_ptr = vec![0u32; obs.cols + 1];
        for (i, j) in obs.row.iter().zip(&obs.col) {
            row_ptr[*i as usize + 1] += 1;
            col_ptr[*j as usize + 1] += 1;
        }
        for k in 0..obs.rows {
            row_ptr[k + 1] += row_ptr[k];
        }
        for k in 0..obs.cols {
            col_ptr[k + 1] += col_ptr[k];
        }
        // Entries by column, rows ascending within a column (a stable sort of row-major
        // entries), so that transposed sums add in the interpreter's order.
        let mut perm: Vec<u32> = (0..nnz as u32).collect();
        perm.sort_by_key(|&e| obs.col[e as usize]);
        let mut aux = BTreeMap::new();
        for (kind, data) in [
            (Aux::Row, &obs.row),
            (Aux::Col, &obs.col),
            (Aux::RowPtr, &row_ptr),
            (Aux::ColPtr, &col_ptr),
            (Aux::Perm, &perm),
        ] {
            aux.insert(kind, self.upload_u32(&name, data));
        }
        self.patterns[id.0 as usize] = Some(Pattern {
            rows: obs.rows,
            cols: obs.cols,
            row: obs.row.clone(),
            col: obs.col.clone(),
            aux,
        });
        self.generation += 1;
        Ok(())
    }

    fn encode(&self, values: impl Iterator<Item = f64>) -> Vec<u8> {
        match self.precision {
            Precision::F32 => {
                let v: Vec<f32> = values.map(|x| x as f32).collect();
                bytemuck::cast_slice(&v).to_vec()
            }
            Precision::F64 => {
                let v: Vec<f64> = values.collect();
                bytemuck::cast_slice(&v).to_vec()
            }
        }
    }

    fn decode(&self, bytes: &[u8]) -> Vec<f64> {
        match self.precision {
            Precision::F32 => bytes
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
            Precision::F64 => bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        }
    }

    /// Checks that a buffer holds a value of its current shape before a kernel reads it.
    fn check_readable(&self, id: BufId) -> Result<(), ExecError> {
        let expected = self.expected(id)?;
        match &self.shapes[id.0 as usize] {
            None => Err(ExecError::Unset(self.name(id))),
            Some(found) if *found != expected => Err(ExecError::Shape {
                name: self.name(id),
                expected,
                found: found.clone(),
            }),
            Some(_) => Ok(()),
        }
    }

    fn groups(&self, n: usize) -> u32 {
        let g = n.div_ceil(WORKGROUP as usize);
        g.min(MAX_WORKGROUPS as usize) as u32
    }

    fn product(&self, dims: &[DimId]) -> Result<usize, ExecError> {
        dims.iter()
            .try_fold(1usize, |acc, d| Ok(acc * self.extent(*d)?))
    }

    fn dispatch_size(&self, grid: &Grid) -> Result<(u32, u32), ExecError> {
        Ok(match grid {
            Grid::Linear(dims) => (self.groups(self.product(dims)?), 1),
            Grid::Partials(dims) => (self.groups(self.product(dims)?).min(MAX_PARTIALS), 1),
            Grid::Tiles { rows, cols } => {
                let tiles = |n: usize| n.div_ceil(TILE as usize).min(MAX_WORKGROUPS as usize);
                (
                    tiles(self.extent(*cols)?) as u32,
                    tiles(self.extent(*rows)?) as u32,
                )
            }
            Grid::Single => (1, 1),
        })
    }

    fn bind_group(&mut self, shader: usize) -> Result<(), ExecError> {
        if self.bind_groups[shader]
            .as_ref()
            .is_some_and(|(g, _)| *g == self.generation)
        {
            return Ok(());
        }
        let spec = &self.shaders.shaders[shader];
        let mut entries = Vec::new();
        for (k, binding) in spec.bindings.iter().enumerate() {
            let buffer = match binding {
                Binding::Dims => &self.dims,
                Binding::Partials => &self.partials,
                Binding::Buffer { id, .. } => match &self.buffers[id.0 as usize] {
                    Some(b) => &b.buffer,
                    None => return Err(ExecError::Unset(self.name(*id))),
                },
                Binding::Aux { pattern, aux } => match self.patterns[pattern.0 as usize]
                    .as_ref()
                    .and_then(|p| p.aux.get(aux))
                {
                    Some(b) => b,
                    None => return Err(ExecError::Unset(self.name(*pattern))),
                },
            };
            entries.push(wgpu::BindGroupEntry {
                binding: k as u32,
                resource: buffer.as_entire_binding(),
            });
        }
        let group = self
            .ctx
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&spec.label),
                layout: &self.pipelines[shader].layout,
                entries: &entries,
            });
        self.bind_groups[shader] = Some((self.generation, group));
        Ok(())
    }
}

impl Backend for GpuBackend {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn bind_dim(&mut self, dim: DimId, extent: usize) {
        let scaled = self.program.scaled_extents(dim, extent);
        for (dim, extent) in std::iter::once((dim, extent)).chain(scaled) {
            if self.extents[dim.0 as usize] != Some(extent) {
                self.extents[dim.0 as usize] = Some(extent);
                self.dims_dirty = true;
            }
        }
    }

    fn set(&mut self, buffer: BufId, value: Value) -> Result<(), ExecError> {
        let expected = self.expected(buffer)?;
        if value.shape() != expected {
            return Err(ExecError::Shape {
                name: self.name(buffer),
                expected,
                found: value.shape(),
            });
        }
        let elements: usize = expected.iter().product();
        self.ensure(buffer, elements)?;
        let bytes = match &value {
            Value::Scalar(s) => self.encode(std::iter::once(*s)),
            Value::Vector(v) => self.encode(v.iter().copied()),
            Value::Matrix(m) => self.encode(m.iter().copied()),
            Value::Observed(o) => {
                if matches!(
                    self.program.buffer(buffer).kind,
                    BufferKind::Observed { .. }
                ) {
                    self.bind_pattern(buffer, o)?;
                }
                self.encode(o.values.iter().copied())
            }
        };
        if !bytes.is_empty()
            && let Some(b) = &self.buffers[buffer.0 as usize]
        {
            self.ctx.queue.write_buffer(&b.buffer, 0, &bytes);
        }
        self.shapes[buffer.0 as usize] = Some(expected);
        Ok(())
    }

    fn get(&self, buffer: BufId) -> Result<Value, ExecError> {
        let Some(shape) = self.shapes[buffer.0 as usize].clone() else {
            return Err(ExecError::Unset(self.name(buffer)));
        };
        let elements: usize = shape.iter().product();
        let size = elements as u64 * self.precision.bytes();
        let data = if size == 0 {
            Vec::new()
        } else {
            let Some(source) = &self.buffers[buffer.0 as usize] else {
                return Err(ExecError::Unset(self.name(buffer)));
            };
            let device = &self.ctx.device;
            let staging = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder =
                device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
            encoder.copy_buffer_to_buffer(&source.buffer, 0, &staging, 0, size);
            self.ctx.queue.submit([encoder.finish()]);
            let slice = staging.slice(..);
            let mapped = Arc::new(Mutex::new(None));
            let flag = Arc::clone(&mapped);
            slice.map_async(wgpu::MapMode::Read, move |r| {
                if let Ok(mut m) = flag.lock() {
                    *m = Some(r);
                }
            });
            // On a device shared between threads, another thread's poll may be the one
            // that runs this mapping's callback, after our poll has returned: wait for it.
            let mut result = None;
            for _ in 0..10_000 {
                device
                    .poll(wgpu::PollType::wait_indefinitely())
                    .map_err(|e| ExecError::Backend(format!("GPU device error: {e}")))?;
                result = mapped.lock().ok().and_then(|mut m| m.take());
                if result.is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            self.check()?;
            match result {
                Some(Ok(())) => {}
                other => {
                    return Err(ExecError::Backend(format!(
                        "GPU readback of %{} failed: {other:?}",
                        self.name(buffer)
                    )));
                }
            }
            let view = slice
                .get_mapped_range()
                .map_err(|e| ExecError::Backend(format!("GPU readback: {e}")))?;
            let values = self.decode(&view);
            drop(view);
            staging.unmap();
            values
        };
        Ok(match shape.as_slice() {
            [] => Value::Scalar(data.first().copied().unwrap_or(0.0)),
            [_] => match &self.patterns[buffer.0 as usize] {
                Some(p) => Value::Observed(Observed {
                    rows: p.rows,
                    cols: p.cols,
                    row: p.row.clone(),
                    col: p.col.clone(),
                    values: Array1::from(data),
                }),
                None => Value::Vector(Array1::from(data)),
            },
            [r, c] => Value::Matrix(
                Array2::from_shape_vec((*r, *c), data)
                    .map_err(|e| ExecError::Backend(e.to_string()))?,
            ),
            _ => {
                return Err(ExecError::Backend(format!(
                    "buffer %{} has rank {}",
                    self.name(buffer),
                    shape.len()
                )));
            }
        })
    }

    fn run(&mut self, kernel: KernelId) -> Result<(), ExecError> {
        let program = Arc::clone(&self.program);
        if self.dims_dirty {
            let mut extents = Vec::with_capacity(program.dims.len());
            for (k, e) in self.extents.iter().enumerate() {
                let e = e.unwrap_or(0);
                extents.push(u32::try_from(e).map_err(|_| {
                    ExecError::Backend(format!(
                        "dimension {} = {e} is too large for a GPU index",
                        program.dims[k].name
                    ))
                })?);
            }
            if !extents.is_empty() {
                self.ctx
                    .queue
                    .write_buffer(&self.dims, 0, bytemuck::cast_slice(&extents));
            }
            self.dims_dirty = false;
        }
        let body = &program.kernel(kernel).body;
        let ids = self.shaders.kernels[kernel.0 as usize].clone();
        // Check and allocate first, in statement order (what each statement reads must hold
        // a value of its current shape, as the interpreter demands).
        for stmt in body {
            for id in stmt.reads() {
                self.check_readable(id)?;
            }
            let dst = stmt.dst();
            let shape = self.expected(dst)?;
            self.ensure(dst, shape.iter().product())?;
            self.shapes[dst.0 as usize] = Some(shape);
        }
        let mut sizes = Vec::new();
        for &shader in &ids {
            self.bind_group(shader)?;
            let mut per_pass = Vec::new();
            for pass in &self.shaders.shaders[shader].passes {
                per_pass.push(self.dispatch_size(&pass.grid)?);
            }
            sizes.push(per_pass);
        }
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some(&program.kernel(kernel).name),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(&program.kernel(kernel).name),
                timestamp_writes: None,
            });
            for (&shader, per_pass) in ids.iter().zip(&sizes) {
                let Some((_, group)) = &self.bind_groups[shader] else {
                    continue;
                };
                pass.set_bind_group(0, group, &[]);
                for (pipeline, (x, y)) in self.pipelines[shader].passes.iter().zip(per_pass) {
                    if *x == 0 || *y == 0 {
                        continue;
                    }
                    pass.set_pipeline(pipeline);
                    pass.dispatch_workgroups(*x, *y, 1);
                }
            }
        }
        self.ctx.queue.submit([encoder.finish()]);
        self.check()
    }

    fn info(&self) -> serde_json::Value {
        let mut info = self.ctx.describe();
        if let Some(map) = info.as_object_mut() {
            map.insert("precision".into(), self.precision.wgsl().into());
            map.insert("shaders".into(), self.shaders.shaders.len().into());
            map.insert("compile_seconds".into(), self.compile_seconds.into());
        }
        info
    }
}
