//! RLHF stages: PPO against a reward model with a KL penalty (InstructGPT), DPO on preference
//! pairs, and GRPO with verifiable rewards.
pub mod clipped;
pub mod dpo;
pub mod gae;
pub mod grpo;
pub mod ppo;
pub mod rollout;
