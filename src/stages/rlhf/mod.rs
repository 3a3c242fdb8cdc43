//! RLHF stages: PPO against a reward model with a KL penalty (InstructGPT), DPO on preference
//! pairs, GRPO with verifiable rewards, and KTO on unpaired 👍/👎 answers;
//! any of them with the SFT loss in every update (`ptx`).
pub mod clipped;
pub mod dpo;
pub mod gae;
pub mod grpo;
pub mod kto;
pub mod ppo;
pub mod ptx;
pub mod rollout;
