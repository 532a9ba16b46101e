//! The `botmaker` binary: a thin shell over the library.

fn main() {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        Some("--version" | "-V") => println!("botmaker {}", env!("CARGO_PKG_VERSION")),
        _ => {
            eprintln!("usage: botmaker --version");
            std::process::exit(2);
        }
    }
}
