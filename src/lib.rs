pub mod config;
pub mod flows;
pub mod session;
pub mod twilio;
