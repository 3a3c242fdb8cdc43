//! Training machinery shared by every stage: losses, the optimiser and schedule, the loop,
//! checkpoints and resume.
pub mod checkpoint;
pub mod loss;
pub mod optim;
pub mod trainer;
