//! The one way into the model's `SampleOptions` from outside the model: a spec's (or a
//! command's, or a request's) [`SampleSettings`], which hold each setting's rule. The ids that
//! end an answer are the prompt's (`Ask::requests` adds them), so none are set here.

use crate::model::sample::SampleOptions;
use crate::spec::SampleSettings;

impl From<SampleSettings> for SampleOptions {
    fn from(s: SampleSettings) -> SampleOptions {
        SampleOptions {
            max_new_tokens: s.max_new_tokens,
            temperature: s.temperature as f32,
            top_k: s.top_k,
            top_p: s.top_p as f32,
            stop: vec![],
            use_cache: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_arrives_and_answers_use_the_cache() {
        let settings = SampleSettings {
            max_new_tokens: 7,
            temperature: 0.8,
            top_k: 20,
            top_p: 0.9,
        };
        let opts = SampleOptions::from(settings);
        assert_eq!(
            (
                opts.max_new_tokens,
                opts.temperature,
                opts.top_k,
                opts.top_p
            ),
            (7, 0.8, 20, 0.9)
        );
        assert!(opts.stop.is_empty() && opts.use_cache);
    }

    #[test]
    fn greedy_is_temperature_zero_and_the_model_is_the_model_default() {
        assert_eq!(
            SampleOptions::from(SampleSettings::greedy(5)).temperature,
            0.0
        );
        let model = SampleOptions::from(SampleSettings::model(64));
        assert_eq!(model, SampleOptions::default());
    }
}
