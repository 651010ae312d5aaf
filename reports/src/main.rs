fn main() {
    std::process::exit(reports::run(std::env::args_os()));
}
