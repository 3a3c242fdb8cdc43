//! The few raw-buffer operations dfdx 0.13 does not offer on gradient storage, per device:
//! scaling in place (gradient clipping, accumulation) and host copies (checkpoints).

use dfdx::prelude::*;

pub trait RawStorage: Storage<f32> {
    fn raw_to_host(&self, v: &Self::Vec) -> Vec<f32>;
    fn raw_from_host(&self, v: &mut Self::Vec, values: &[f32]);
    fn raw_scale(&self, v: &mut Self::Vec, factor: f32);
    fn raw_sum_squares(&self, v: &Self::Vec) -> f64;
}

impl RawStorage for Cpu {
    fn raw_to_host(&self, v: &Self::Vec) -> Vec<f32> {
        v.to_vec()
    }
    fn raw_from_host(&self, v: &mut Self::Vec, values: &[f32]) {
        v.copy_from_slice(values)
    }
    fn raw_scale(&self, v: &mut Self::Vec, factor: f32) {
        v.iter_mut().for_each(|x| *x *= factor)
    }
    fn raw_sum_squares(&self, v: &Self::Vec) -> f64 {
        v.iter().map(|&x| (x as f64) * (x as f64)).sum()
    }
}

#[cfg(feature = "cuda")]
impl RawStorage for Cuda {
    // Host round trips: only used for clipping scale, accumulation and checkpoints, which are
    // rare or small next to the forward/backward pass.
    fn raw_to_host(&self, v: &Self::Vec) -> Vec<f32> {
        v.device().dtoh_sync_copy(v).expect("CUDA copy to host")
    }
    fn raw_from_host(&self, v: &mut Self::Vec, values: &[f32]) {
        v.device()
            .htod_sync_copy_into(values, v)
            .expect("CUDA copy to device")
    }
    fn raw_scale(&self, v: &mut Self::Vec, factor: f32) {
        let mut host = self.raw_to_host(v);
        host.iter_mut().for_each(|x| *x *= factor);
        self.raw_from_host(v, &host)
    }
    fn raw_sum_squares(&self, v: &Self::Vec) -> f64 {
        self.raw_to_host(v)
            .iter()
            .map(|&x| (x as f64) * (x as f64))
            .sum()
    }
}
