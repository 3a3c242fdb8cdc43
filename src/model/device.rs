//! Opening a device by name, with an error a newcomer can act on: a GPU run that cannot start
//! says what is missing (the build's feature, the driver, the libraries) instead of panicking.
//! Which device a command uses is chosen in one place (`cli/device.rs`, and the runner for
//! `gptlab run`); this file only builds it.

#[cfg(feature = "cuda")]
use anyhow::Result;

/// What a CUDA run needs, for the errors below.
const CUDA_NEEDS: &str = "gptlab runs on CUDA only when built with the `cuda` feature \
(`cargo build --release --features cuda`, or scripts/build-cuda.sh for a bundle built on a \
machine without a GPU) and run on a machine with an NVIDIA GPU, its driver (libcuda.so.1; \
driver 580 or newer for the CUDA 13 bundle, `nvidia-smi` must list the GPU) and the CUDA \
libraries cuBLAS and NVRTC on LD_LIBRARY_PATH (CUDA 12 or 13). Use `--device cpu` (or \
`device = \"cpu\"`) to run on the CPU instead.";

/// The error for `cuda` in a build without the feature.
pub fn no_cuda_build() -> anyhow::Error {
    anyhow::anyhow!("this gptlab was built without CUDA support. {CUDA_NEEDS}")
}

/// The first CUDA GPU, its random numbers seeded with `seed`. dfdx's fallible constructor
/// returns the driver's error; a library that cannot even be loaded panics inside cudarc, so
/// that is caught too and reported the same way.
#[cfg(feature = "cuda")]
pub fn open_cuda(seed: u64) -> Result<dfdx::tensor::Cuda> {
    let opened = std::panic::catch_unwind(|| dfdx::tensor::Cuda::try_build(0, seed));
    match opened {
        Ok(Ok(dev)) => {
            // dfdx's tensor cache reuses freed device buffers instead of going through the
            // driver's allocator for every tensor of every step.
            dfdx::tensor::Cache::try_enable_cache(&dev)
                .map_err(|e| anyhow::anyhow!("cannot enable the CUDA tensor cache: {e}"))?;
            Ok(dev)
        }
        Ok(Err(e)) => Err(anyhow::anyhow!(
            "cannot open the CUDA GPU ({e}). {CUDA_NEEDS}"
        )),
        Err(_) => Err(anyhow::anyhow!(
            "cannot load the CUDA driver or libraries (see the message above). {CUDA_NEEDS}"
        )),
    }
}

#[cfg(all(test, not(feature = "cuda")))]
mod tests {
    #[test]
    fn the_error_names_the_feature_the_driver_and_the_way_back_to_the_cpu() {
        let e = super::no_cuda_build().to_string();
        for needed in ["--features cuda", "driver", "cuBLAS", "--device cpu"] {
            assert!(e.contains(needed), "{needed} missing from: {e}");
        }
    }
}
