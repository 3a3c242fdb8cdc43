//! Generalised Advantage Estimation (Schulman et al. 2016) over one completion:
//! δ_t = r_t + γ V_{t+1} − V_t,  A_t = δ_t + γλ A_{t+1},  returns = A + V (V after the end = 0).

pub fn gae(rewards: &[f64], values: &[f64], gamma: f64, lam: f64) -> (Vec<f64>, Vec<f64>) {
    let n = rewards.len();
    let mut adv = vec![0.0; n];
    let mut next_adv = 0.0;
    for t in (0..n).rev() {
        let next_value = if t + 1 < n { values[t + 1] } else { 0.0 };
        let delta = rewards[t] + gamma * next_value - values[t];
        next_adv = delta + gamma * lam * next_adv;
        adv[t] = next_adv;
    }
    let returns = adv.iter().zip(values).map(|(a, v)| a + v).collect();
    (adv, returns)
}

/// Shifts and scales to mean 0, std 1 across all values (PPO's whitening).
pub fn whiten(rows: &mut [Vec<f64>], shift_mean: bool) {
    let all: Vec<f64> = rows.iter().flatten().copied().collect();
    if all.len() < 2 {
        return;
    }
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let var = all.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (all.len() - 1) as f64;
    let scale = 1.0 / (var.sqrt() + 1e-8);
    for x in rows.iter_mut().flatten() {
        *x = if shift_mean {
            (*x - mean) * scale
        } else {
            (*x - mean) * scale + mean
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gae_matches_a_hand_computed_example() {
        // rewards [0, 0, 1], values [0.5, 0.4, 0.8], γ = 0.9, λ = 0.8:
        // δ2 = 1 − 0.8 = 0.2;            A2 = 0.2
        // δ1 = 0 + 0.9·0.8 − 0.4 = 0.32;  A1 = 0.32 + 0.72·0.2 = 0.464
        // δ0 = 0 + 0.9·0.4 − 0.5 = −0.14; A0 = −0.14 + 0.72·0.464 = 0.19408
        let (adv, ret) = gae(&[0.0, 0.0, 1.0], &[0.5, 0.4, 0.8], 0.9, 0.8);
        let expected = [0.19408, 0.464, 0.2];
        for (a, e) in adv.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{adv:?}");
        }
        assert!((ret[0] - 0.69408).abs() < 1e-12 && (ret[2] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn whitening_gives_zero_mean_unit_std() {
        let mut rows = vec![vec![1.0, 2.0], vec![3.0, 4.0, 5.0]];
        whiten(&mut rows, true);
        let all: Vec<f64> = rows.concat();
        let mean = all.iter().sum::<f64>() / 5.0;
        let var = all.iter().map(|x| x * x).sum::<f64>() / 4.0;
        assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-6);
    }
}
