//! The `wxgate` binary: the Lambda function when started by the Lambda runtime, the command
//! line (`serve`, `send`, `notify`, `check`, `jobs`) otherwise.

use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        wxgate::lambda_main()
    } else {
        wxgate::cli_main()
    }
}
