//! The `wxgate` binary. The gateway adapters (`serve`, `send`, Lambda) build on the protocol
//! core in the library; until they land this prints what it is.

fn main() {
    println!(
        "wxgate {}: WeChat Work / Official Account / Open Platform callback gateway.\n\
         The protocol core is in the library; `serve`, `send` and the Lambda handler are not built yet.",
        env!("CARGO_PKG_VERSION")
    );
}
