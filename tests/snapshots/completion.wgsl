// program completion: 16 shaders, scalar type f32
// kernel setup: 
// kernel value: #0, #1
// kernel grad_left: #0, #1, #2, #3
// kernel grad_right: #0, #1, #2, #4
// kernel value_after_right: #0, #1
// kernel residual: #0, #1, #2
// kernel apply_neg_grad: #5
// kernel apply_neg_grad_t: #6
// kernel dual: #7, #8, #9
// kernel curvature: #10, #11
// kernel gauge_left: #12
// kernel prox_left: #13
// kernel gauge_right: #14
// kernel prox_right: #15

// ---- shader #0: value.0.sample
// sample
alias T = f32;
@group(0) @binding(0) var<storage, read> dims: array<u32>;
@group(0) @binding(1) var<storage, read_write> b18_pred: array<T>;
@group(0) @binding(2) var<storage, read> b1_U: array<T>;
@group(0) @binding(3) var<storage, read> b2_V: array<T>;
@group(0) @binding(4) var<storage, read> b0_Y_row: array<u32>;
@group(0) @binding(5) var<storage, read> b0_Y_col: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = dims[2u];
    let n = dims[4u];
    let stride = nwg.x * 256u;
    for (var i = gid.x; i < n; i += stride) {
        let ra = b0_Y_row[i] * k;
        let rb = b0_Y_col[i] * k;
        var acc = T(0);
        for (var c = 0u; c < k; c++) {
            acc += b1_U[ra + c] * b2_V[rb + c];
        }
        b18_pred[i] = acc;
    }
}

// ---- shader #1: value.1.sum
// sum
alias T = f32;
@group(0) @binding(0) var<storage, read> dims: array<u32>;
@group(0) @binding(1) var<storage, read_write> b3_loss: array<T>;
@group(0) @binding(2) var<storage, read> b18_pred: array<T>;
@group(0) @binding(3) var<storage, read> b0_Y: array<T>;
@group(0) @binding(4) var<storage, read_write> partials: array<T>;
var<workgroup> tree: array<T, 256>;
fn hfc_sqr(x: T) -> T {
    return x * x;
}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = dims[4u];
    var acc = T(0);
    for (var i = wid.x * 256u + lid.x; i < n; i += nwg.x * 256u) {
        acc += (hfc_sqr((b18_pred[i] - b0_Y[i])) * T(0.5f));
    }
    tree[lid.x] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid.x < s) { tree[lid.x] += tree[lid.x + s]; }
        workgroupBarrier();
    }
    if (lid.x == 0u) { partials[wid.x] = tree[0]; }
}
@compute @workgroup_size(256)
fn finish(@builtin(local_invocation_id) lid: vec3<u32>) {
    let n = dims[4u];
    let groups = min((n + 255u) / 256u, 256u);
    var acc = T(0);
    if (lid.x < groups) { acc = partials[lid.x]; }
    tree[lid.x] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid.x < s) { tree[lid.x] += tree[lid.x + s]; }
        workgroupBarrier();
    }
    if (lid.x == 0u) { b3_loss[0] = tree[0]; }
}

// ---- shader #2: grad_left.2.map
// map
alias T = f32;
@group(0) @binding(0) var<storage, read> dims: array<u32>;
@group(0) @binding(1) var<storage, read_write> b19_grad_obs: array<T>;
@group(0) @binding(2) var<storage, read> b18_pred: array<T>;
@group(0) @binding(3) var<storage, read> b0_Y: array<T>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = dims[4u];
    let stride = nwg.x * 256u;
    for (var i = gid.x; i < n; i += stride) {
        b19_grad_obs[i] = (b18_pred[i] - b0_Y[i]);
    }
}

// ---- shader #3: grad_left.3.spmm
// spmm
alias T = f32;
@group(0) @binding(0) var<storage, read> dims: array<u32>;
@group(0) @binding(1) var<storage, read_write> b4_grad_left: array<T>;
@group(0) @binding(2) var<storage, read> b19_grad_obs: array<T>;
@group(0) @binding(3) var<storage, read> b2_V: array<T>;
@group(0) @binding(4) var<storage, read> b0_Y_row_ptr: array<u32>;
@group(0) @binding(5) var<storage, read> b0_Y_col: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let cols = dims[2u];
    let n = dims[0u] * dims[2u];
    let stride = nwg.x * 256u;
    for (var i = gid.x; i < n; i += stride) {
        let orow = i / cols;
        let c = i % cols;
        var acc = T(0);
        for (var e = b0_Y_row_ptr[orow]; e < b0_Y_row_ptr[orow + 1u]; e++) {
            acc += b19_grad_obs[e] * b2_V[b0_Y_col[e] * cols + c];
        }
        b4_grad_left[i] = T(1.0f) * acc;
    }
}

// ---- shader #4: grad_right.3.spmm
// spmm
alias T = f32;
@group(0) @binding(0) var<storage, read> dims: array<u32>;
@group(0) @binding(1) var<storage, read_write> b5_grad_right: array<T>;
@group(0) @binding(2) var<storage, read> b19_grad_obs: array<T>;
@group(0) @binding(3) var<storage, read> b1_U: array<T>;
@group(0) @binding(4) var<storage, read> b0_Y_col_ptr: array<u32>;
@group(0) @binding(5) var<storage, read> b0_Y_perm: array<u32>;
@group(0) @binding(6) var<storage, read> b0_Y_row: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let cols = dims[2u];
    let n = dims[1u] * dims[2u];
    let stride = nwg.x * 256u;
    for (var i = gid.x; i < n; i += stride) {
        let orow = i / cols;
        let c = i % cols;
        var acc = T(0);
        for (var q = b0_Y_col_ptr[orow]; q < b0_Y_col_ptr[orow + 1u]; q++) {
            let e = b0_Y_perm[q];
            acc += b19_grad_obs[e] * b1_U[b0_Y_row[e] * cols + c];
        }
        b5_grad_right[i] = T(1.0f) * acc;
    }
}

// ---- shader #5: apply_neg_grad.0.spmm
// spmm
alias T = f32;
@group(0) @binding(0) var<storage, read> dims: array<u32>;
@group(0) @binding(1) var<storage, read_write> b13_probe_out_left: array<T>;
@group(0) @binding(2) var<storage, read> b19_grad_obs: array<T>;
@group(0) @binding(3) var<storage, read> b12_probe_in_right: array<T>;
@group(0) @binding(4) var<storage, read> b0_Y_row_ptr: array<u32>;
@group(0) @binding(5) var<storage, read> b0_Y_col: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let cols = dims[3u];
    let n = dims[0u] * dims[3u];
    let stride = nwg.x * 256u;
    for (var i = gid.x; i < n; i += stride) {
        let orow = i / cols;
        let c = i % cols;
        var acc = T(0);
        for (var e = b0_Y_row_ptr[orow]; e < b0_Y_row_ptr[orow + 1u]; e++) {
            acc += b19_grad_obs[e] * b12_probe_in_right[b0_Y_col[e] * cols + c];
        }
        b13_probe_out_left[i] = T(-1.0f) * acc;
    }
}

// ---- shader #6: apply_neg_grad_t.0.spmm
// spmm
alias T = f32;
@group(0) @binding(0) var<storage, read> dims: array<u32>;
@group(0) @binding(1) var<storage, read_write> b14_probe_out_right: array<T>;
@group(0) @binding(2) var<storage, read> b19_grad_obs: array<T>;
@group(0) @binding(3) var<storage, read> b11_probe_in_left: array<T>;
@group(0) @binding(4) var<storage, read> b0_Y_col_ptr: array<u32>;
@group(0) @binding(5) var<storage, read> b0_Y_perm: array<u32>;
@group(0) @binding(6) var<storage, read> b0_Y_row: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let cols = dims[3u];
    let n = dims[1u] * dims[3u];
    let stride = nwg.x * 256u;
    for (var i = gid.x; i < n; i += stride) {
        let orow = i / cols;
        let c = i % cols;
        var acc = T(0);
        for (var q = b0_Y_col_ptr[orow]; q < b0_Y_col_ptr[orow + 1u]; q++) {
            let e = b0_Y_perm[q];
            acc += b19_grad_obs[e] * b11_probe_in_left[b0_Y_row[e] * cols + c];
        }
        b14_probe_out_right[i] = T(-1.0f) * acc;
    }
}

// ---- shader #7: dual.0.map
// map
alias T = f32;
@group(0) @binding(0) var<storage, read> dims: array<u32>;
@group(0) @binding(1) var<storage, read_write> b20_dual_point: array<T>;
@group(0) @binding(2) var<storage, read> b15_dual_scale: array<T>;
@group(0) @binding(3) var<storage, read> b19_grad_obs: array<T>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = dims[4u];
    let stride = nwg.x * 256u;
    for (var i = gid.x; i < n; i += stride) {
        b20_dual_point[i] = (b15_dual_scale[0] * b19_grad_obs[i]);
    }
}

// ---- shader #8: dual.1.sum
// sum
alias T = f32;
@group(0) @binding(0) var<storage, read> dims: array<u32>;
@group(0) @binding(1) var<storage, read_write> b21_conjugate_sum: array<T>;
@group(0) @binding(2) var<storage, read> b20_dual_point: array<T>;
@group(0) @binding(3) var<storage, read> b0_Y: array<T>;
@group(0) @binding(4) var<storage, read_write> partials: array<T>;
var<workgroup> tree: array<T, 256>;
fn hfc_sqr(x: T) -> T {
    return x * x;
}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = dims[4u];
    var acc = T(0);
    for (var i = wid.x * 256u + lid.x; i < n; i += nwg.x * 256u) {
        acc += ((b20_dual_point[i] * b0_Y[i]) + (hfc_sqr(b20_dual_point[i]) * T(0.5f)));
    }
    tree[lid.x] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid.x < s) { tree[lid.x] += tree[lid.x + s]; }
        workgroupBarrier();
    }
    if (lid.x == 0u) { partials[wid.x] = tree[0]; }
}
@compute @workgroup_size(256)
fn finish(@builtin(local_invocation_id) lid: vec3<u32>) {
    let n = dims[4u];
    let groups = min((n + 255u) / 256u, 256u);
    var acc = T(0);
    if (lid.x < groups) { acc = partials[lid.x]; }
    tree[lid.x] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid.x < s) { tree[lid.x] += tree[lid.x + s]; }
        workgroupBarrier();
    }
    if (lid.x == 0u) { b21_conjugate_sum[0] = tree[0]; }
}

// ---- shader #9: dual.2.map
// map
alias T = f32;
@group(0) @binding(0) var<storage, read> dims: array<u32>;
@group(0) @binding(1) var<storage, read_write> b16_dual: array<T>;
@group(0) @binding(2) var<storage, read> b21_conjugate_sum: array<T>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = 1u;
    let stride = nwg.x * 256u;
    for (var i = gid.x; i < n; i += stride) {
        b16_dual[0] = (-b21_conjugate_sum[0]);
    }
}

// ---- shader #10: curvature.0.sample
// sample
alias T = f32;
@group(0) @binding(0) var<storage, read> dims: array<u32>;
@group(0) @binding(1) var<storage, read_write> b22_probe_sample: array<T>;
@group(0) @binding(2) var<storage, read> b11_probe_in_left: array<T>;
@group(0) @binding(3) var<storage, read> b12_probe_in_right: array<T>;
@group(0) @binding(4) var<storage, read> b0_Y_row: array<u32>;
@group(0) @binding(5) var<storage, read> b0_Y_col: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = dims[3u];
    let n = dims[4u];
    let stride = nwg.x * 256u;
    for (var i = gid.x; i < n; i += stride) {
        let ra = b0_Y_row[i] * k;
        let rb = b0_Y_col[i] * k;
        var acc = T(0);
        for (var c = 0u; c < k; c++) {
            acc += b11_probe_in_left[ra + c] * b12_probe_in_right[rb + c];
        }
        b22_probe_sample[i] = acc;
    }
}

// ---- shader #11: curvature.1.sum
// sum
alias T = f32;
@group(0) @binding(0) var<storage, read> dims: array<u32>;
@group(0) @binding(1) var<storage, read_write> b17_curvature: array<T>;
@group(0) @binding(2) var<storage, read> b22_probe_sample: array<T>;
@group(0) @binding(3) var<storage, read_write> partials: array<T>;
var<workgroup> tree: array<T, 256>;
fn hfc_sqr(x: T) -> T {
    return x * x;
}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = dims[4u];
    var acc = T(0);
    for (var i = wid.x * 256u + lid.x; i < n; i += nwg.x * 256u) {
        acc += hfc_sqr(b22_probe_sample[i]);
    }
    tree[lid.x] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid.x < s) { tree[lid.x] += tree[lid.x + s]; }
        workgroupBarrier();
    }
    if (lid.x == 0u) { partials[wid.x] = tree[0]; }
}
@compute @workgroup_size(256)
fn finish(@builtin(local_invocation_id) lid: vec3<u32>) {
    let n = dims[4u];
    let groups = min((n + 255u) / 256u, 256u);
    var acc = T(0);
    if (lid.x < groups) { acc = partials[lid.x]; }
    tree[lid.x] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid.x < s) { tree[lid.x] += tree[lid.x + s]; }
        workgroupBarrier();
    }
    if (lid.x == 0u) { b17_curvature[0] = tree[0]; }
}

// ---- shader #12: gauge_left.0.colgauge
// colgauge
alias T = f32;
@group(0) @binding(0) var<storage, read> dims: array<u32>;
@group(0) @binding(1) var<storage, read_write> b9_gauge_left: array<T>;
@group(0) @binding(2) var<storage, read> b1_U: array<T>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let rows = dims[0u];
    let k = dims[2u];
    let n = k;
    let stride = nwg.x * 256u;
    for (var i = gid.x; i < n; i += stride) {
        var total = T(0);
         {
            var s = T(0);
            for (var r = 0u; r < rows; r++) {
                let v = b1_U[r * k + i];
                s += v * v;
            }
            s = sqrt(s);
            total += T(1.0f) * s;
        }
        b9_gauge_left[i] = total;
    }
}

// ---- shader #13: prox_left.0.colprox
// colprox
alias T = f32;
@group(0) @binding(0) var<storage, read> dims: array<u32>;
@group(0) @binding(1) var<storage, read_write> b1_U: array<T>;
@group(0) @binding(2) var<storage, read> b6_step_left: array<T>;
@group(0) @binding(3) var<storage, read> b8_prox_weights: array<T>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let rows = dims[0u];
    let k = dims[2u];
    let n = k;
    let stride = nwg.x * 256u;
    for (var i = gid.x; i < n; i += stride) {
        let col = i;
        for (var r = 0u; r < rows; r++) {
            b1_U[(r) * k + col] = b6_step_left[r * k + col];
        }
        let c = b8_prox_weights[col];
        if (!(c > T(0))) { continue; }
         {
            let weight = c * T(1.0f);
            var norm = T(0);
            for (var r = 0u; r < rows; r++) {
                let v = b1_U[(r) * k + col];
                norm += v * v;
            }
            norm = sqrt(norm);
            var factor = T(0);
            if (norm > weight) { factor = T(1) - weight / norm; }
            for (var r = 0u; r < rows; r++) {
                b1_U[(r) * k + col] = b1_U[(r) * k + col] * factor;
            }
        }
    }
}

// ---- shader #14: gauge_right.0.colgauge
// colgauge
alias T = f32;
@group(0) @binding(0) var<storage, read> dims: array<u32>;
@group(0) @binding(1) var<storage, read_write> b10_gauge_right: array<T>;
@group(0) @binding(2) var<storage, read> b2_V: array<T>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let rows = dims[1u];
    let k = dims[2u];
    let n = k;
    let stride = nwg.x * 256u;
    for (var i = gid.x; i < n; i += stride) {
        var total = T(0);
         {
            var s = T(0);
            for (var r = 0u; r < rows; r++) {
                let v = b2_V[r * k + i];
                s += v * v;
            }
            s = sqrt(s);
            total += T(1.0f) * s;
        }
        b10_gauge_right[i] = total;
    }
}

// ---- shader #15: prox_right.0.colprox
// colprox
alias T = f32;
@group(0) @binding(0) var<storage, read> dims: array<u32>;
@group(0) @binding(1) var<storage, read_write> b2_V: array<T>;
@group(0) @binding(2) var<storage, read> b7_step_right: array<T>;
@group(0) @binding(3) var<storage, read> b8_prox_weights: array<T>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let rows = dims[1u];
    let k = dims[2u];
    let n = k;
    let stride = nwg.x * 256u;
    for (var i = gid.x; i < n; i += stride) {
        let col = i;
        for (var r = 0u; r < rows; r++) {
            b2_V[(r) * k + col] = b7_step_right[r * k + col];
        }
        let c = b8_prox_weights[col];
        if (!(c > T(0))) { continue; }
         {
            let weight = c * T(1.0f);
            var norm = T(0);
            for (var r = 0u; r < rows; r++) {
                let v = b2_V[(r) * k + col];
                norm += v * v;
            }
            norm = sqrt(norm);
            var factor = T(0);
            if (norm > weight) { factor = T(1) - weight / norm; }
            for (var r = 0u; r < rows; r++) {
                b2_V[(r) * k + col] = b2_V[(r) * k + col] * factor;
            }
        }
    }
}
