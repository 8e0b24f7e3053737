//! The optimiser side of training: AdamW with weight decay on matrices only, one global
//! gradient-norm clip, and the parameter ids that tie burn's optimiser state to the parameters.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use super::TrainError;

/// One float parameter: its module path (`content.0.q.weight`), its id and its rank.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamInfo {
    pub name: String,
    pub id: ParamId,
    pub rank: usize,
}

#[derive(Default)]
struct Lister {
    path: Vec<String>,
    out: Vec<ParamInfo>,
}

impl ModuleVisitor for Lister {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.out.push(ParamInfo { name: self.path.join("."), id: param.id, rank: D });
    }
}

/// Every float parameter of `module`, in visiting order.
pub fn params<M: Module>(module: &M) -> Vec<ParamInfo> {
    let mut lister = Lister::default();
    module.visit(&mut lister);
    lister.out
}

/// AdamW, betas (0.9, 0.95), eps 1e-8 (PyTorch's), decoupled weight decay `weight_decay` on the
/// parameters of rank >= 2 and none on the others.
///
/// "Matrices only" follows the official code (LlamaGen's optimiser set-up: decay iff
/// `p.dim() >= 2`): linear weights, conv kernels AND the embedding table decay; RMSNorm gains
/// and biases (rank 1) do not. No clipping here: [`clip_global_norm`] clips all gradients
/// together, as `torch.nn.utils.clip_grad_norm_` does (burn's own clipping works per tensor).
pub fn adamw<M: Module>(module: &M, weight_decay: f32) -> ModuleOptimizer {
    let config = AdamWConfig::new().with_beta_1(0.9).with_beta_2(0.95).with_epsilon(1e-8);
    let no_decay: Vec<ParamId> = params(module).into_iter().filter(|p| p.rank < 2).map(|p| p.id).collect();
    config.clone().with_weight_decay(weight_decay).init().with_group(
        ParamGroup::from_ids(no_decay),
        config.with_weight_decay(0.0).build(),
        None,
    )
}

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = g.square().sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g * self.factor);
        }
    }
}

/// Scale all gradients of `module` together so that their global l2 norm is at most `max_norm`
/// (`max_norm <= 0` disables clipping). Returns the norm before clipping.
pub fn clip_global_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f32) -> f32 {
    let mut sq = SquaredNorm { grads, total: None };
    module.visit(&mut sq);
    let norm = sq.total.map_or(0.0, |t| t.into_scalar::<f32>().sqrt());
    if max_norm > 0.0 && norm > max_norm {
        let factor = max_norm as f64 / (norm as f64 + 1e-6);
        module.visit(&mut Scale { grads, factor });
    }
    norm
}

struct SetIds<'a> {
    path: Vec<String>,
    ids: &'a HashMap<String, u64>,
    missing: Option<String>,
}

impl ModuleMapper for SetIds<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.join(".");
        match self.ids.get(&name) {
            Some(&id) => {
                let (_, value, mapper) = param.consume();
                Param::from_mapped_value(ParamId::from(id), value, mapper)
            }
            None => {
                self.missing.get_or_insert(name);
                param
            }
        }
    }
}

/// Give every float parameter of `module` the id saved under its name, so that a restored
/// optimiser state (keyed by id) finds its parameters again.
pub fn restore_ids<M: Module>(module: M, ids: &[(String, u64)]) -> Result<M, TrainError> {
    let ids: HashMap<String, u64> = ids.iter().cloned().collect();
    let mut mapper = SetIds { path: vec![], ids: &ids, missing: None };
    let module = module.map(&mut mapper);
    match mapper.missing {
        Some(name) => Err(TrainError::State(format!("no saved parameter id for '{name}'"))),
        None => Ok(module),
    }
}

/// `(name, id)` of every float parameter, for the training state.
pub fn ids<M: Module>(module: &M) -> Vec<(String, u64)> {
    params(module).into_iter().map(|p| (p.name, p.id.val())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arpg::config::ModelConfig;
    use arpg::model::Arpg;
    use burn::tensor::{Device, Distribution};

    #[test]
    fn only_rank_one_parameters_escape_weight_decay() {
        let m = Arpg::new(&ModelConfig::test(16, 3), &Device::flex());
        let ps = params(&m);
        let names = |keep: fn(&ParamInfo) -> bool| -> Vec<String> {
            ps.iter().filter(|p| keep(p)).map(|p| p.name.clone()).collect()
        };
        let flat = names(|p| p.rank < 2);
        assert!(!flat.is_empty() && flat.iter().all(|n| n.contains("norm")), "{flat:?}");
        let decayed = names(|p| p.rank >= 2);
        assert!(decayed.contains(&"embed.weight".to_string()), "{decayed:?}");
        assert!(decayed.contains(&"content.0.q.weight".to_string()), "{decayed:?}");
    }

    #[test]
    fn clipping_scales_the_global_norm_to_the_limit() {
        let device = Device::flex().autodiff();
        let lin = burn::nn::LinearConfig::new(8, 8).init(&device);
        let x = Tensor::<2>::random([4, 8], Distribution::Uniform(10.0, 20.0), &device);
        let loss = lin.forward(x).powf_scalar(2.0).sum();
        let mut grads = GradientsParams::from_grads(loss.backward(), &lin);
        let before = clip_global_norm(&lin, &mut grads, 1.0);
        assert!(before > 10.0, "{before}");
        let after = clip_global_norm(&lin, &mut grads, 0.0);
        assert!((after - 1.0).abs() < 1e-3, "{after}");
    }

    #[test]
    fn ids_survive_a_round_trip_through_names() {
        let device = Device::flex();
        let a = Arpg::new(&ModelConfig::test(16, 3), &device);
        let b = restore_ids(Arpg::new(&ModelConfig::test(16, 3), &device), &ids(&a)).unwrap();
        assert_eq!(ids(&a), ids(&b));
        assert!(restore_ids(b, &ids(&a)[1..]).is_err());
    }
}
