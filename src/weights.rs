//! Moving a burn module's parameters to and from the checkpoint's named f32 tensors.
//! Names are the module paths, e.g. `content.0.q.weight`.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};

use crate::checkpoint::{CheckpointError, NamedTensor, TensorSource};

fn join(prefix: &str, path: &[String]) -> String {
    let mut name = prefix.to_string();
    for p in path {
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(p);
    }
    name
}

struct Exporter {
    prefix: String,
    path: Vec<String>,
    out: Vec<NamedTensor>,
}

impl ModuleVisitor for Exporter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let shape = tensor.dims().to_vec();
        // Native only: a synchronous read-back (export runs in training and quantization tools).
        let data = tensor.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 parameter");
        self.out.push(NamedTensor { name: join(&self.prefix, &self.path), shape, data });
    }
}

/// Every float parameter of `module`, named `prefix.path`, in visiting order.
pub fn export<M: Module>(module: &M, prefix: &str) -> Vec<NamedTensor> {
    let mut v = Exporter { prefix: prefix.to_string(), path: vec![], out: vec![] };
    module.visit(&mut v);
    v.out
}

struct Shapes {
    prefix: String,
    path: Vec<String>,
    out: Vec<(String, Vec<usize>)>,
}

impl ModuleVisitor for Shapes {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // The declared shape: a lazily initialised parameter stays unallocated.
        self.out.push((join(&self.prefix, &self.path), param.lazy_shape().dims::<D>().to_vec()));
    }
}

/// `(name, shape)` of every float parameter of `module`, as [`export`] names them, without
/// reading (or, for lazily initialised modules, allocating) any value.
pub fn shapes<M: Module>(module: &M, prefix: &str) -> Vec<(String, Vec<usize>)> {
    let mut v = Shapes { prefix: prefix.to_string(), path: vec![], out: vec![] };
    module.visit(&mut v);
    v.out
}

struct Importer<'a, S: ?Sized> {
    prefix: String,
    path: Vec<String>,
    tensors: &'a mut S,
    device: Device,
    error: Option<CheckpointError>,
}

impl<S: TensorSource + ?Sized> ModuleMapper for Importer<'_, S> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.error.is_some() {
            return param;
        }
        let name = join(&self.prefix, &self.path);
        let expected = param.lazy_shape().dims::<D>().to_vec();
        match self.tensors.take(&name) {
            Err(e) => self.error = Some(e),
            Ok(None) => self.error = Some(CheckpointError::MissingTensor(name)),
            Ok(Some(t)) if t.shape != expected => {
                self.error = Some(CheckpointError::ShapeMismatch { name, expected, found: t.shape })
            }
            Ok(Some(t)) => {
                // Taken, not copied: loading holds each weight once.
                let data = TensorData::new(t.data, t.shape);
                let device = self.device.clone();
                return param
                    .map(|old| Tensor::from_data(data, &device).set_require_grad(old.is_require_grad()));
            }
        }
        param
    }
}

/// Replace every float parameter of `module` with the tensor of the same name, taken from
/// `tensors` (values moved out of memory, or read from a file); a missing tensor or a shape
/// mismatch is an error.
pub fn import<M: Module, S: TensorSource + ?Sized>(
    module: M,
    tensors: &mut S,
    prefix: &str,
    device: &Device,
) -> Result<M, CheckpointError> {
    let mut m =
        Importer { prefix: prefix.to_string(), path: vec![], tensors, device: device.clone(), error: None };
    let module = module.map(&mut m);
    match m.error {
        Some(e) => Err(e),
        None => Ok(module),
    }
}
