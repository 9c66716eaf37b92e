//! EBGAN's discriminator (Zhao et al. 2017): an auto-encoder whose reconstruction error is the
//! energy D(x). On images the encoder is a DCGAN discriminator whose last linear map gives the
//! code, and the decoder a DCGAN generator from the code; on other data both are MLPs.
//!
//! Its output rows are `[energy, code...]`: the energy (mean squared reconstruction error per
//! coordinate) is what the losses read as D(x), and the code is what the generator's pull-away
//! term reads (see `game::loss`).

use burn::tensor::Tensor;

use super::{Net, ParamSpec};
use crate::net_ops::NetOps;

/// The auto-encoder: `encoder` maps `x_dim` to the code, `decoder` the code back to `x_dim`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ebgan {
    pub encoder: Net,
    pub decoder: Net,
}

impl Ebgan {
    /// The encoder's tensors (`enc.*`), then the decoder's (`dec.*`).
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let named = |net: &Net, prefix: &str| -> Vec<ParamSpec> {
            net.param_specs()
                .into_iter()
                .map(|s| ParamSpec {
                    name: format!("{prefix}.{}", s.name),
                    ..s
                })
                .collect()
        };
        let mut v = named(&self.encoder, "enc");
        v.extend(named(&self.decoder, "dec"));
        v
    }

    /// The energy and the code.
    pub fn out_dim(&self) -> usize {
        1 + self.encoder.out_dim()
    }

    pub fn code_dim(&self) -> usize {
        self.encoder.out_dim()
    }

    /// The encoder's initial values, then the decoder's.
    pub fn init<R: rand::Rng>(&self, rng: &mut R) -> Vec<Vec<f64>> {
        let mut v = self.encoder.init(rng);
        v.extend(self.decoder.init(rng));
        v
    }

    /// Rows `[energy, code]` for input rows `x`.
    pub fn forward<B: NetOps, const D: usize>(
        &self,
        params: &[Tensor<B, D>],
        x: Tensor<B, D>,
    ) -> Tensor<B, D> {
        let ne = self.encoder.param_specs().len();
        let code = self.encoder.forward(&params[..ne], x.clone());
        let recon = self.decoder.forward(&params[ne..], code.clone());
        let energy = (recon - x).square().mean_dim(D - 1);
        Tensor::cat(vec![energy, code], D - 1)
    }
}
