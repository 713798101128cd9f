//! The `wxgate` binary: the Lambda function when started by the Lambda runtime, the command
//! line (`serve`, `send`, `check`) otherwise.

use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        wxgate::cli::lambda_main()
    } else {
        wxgate::cli::main()
    }
}
