use clap::Parser;
use llm_anatomy::cli::{Cli, run};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(command) => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            match run(command, &mut out) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        None => match llm_anatomy::ui::run_native(llm_anatomy::ui::StartOptions {
            // A cached model's name opens its folder; anything else is tried as given.
            path: cli.path.map(|p| llm_anatomy::library::resolve(&p).unwrap_or(p)),
            select: cli.select,
            prompt: cli.prompt,
            adapter: cli.adapter,
            view: cli.view,
            lang: cli.lang.as_deref().and_then(llm_anatomy::ui::i18n::Lang::parse),
            export_dir: cli.export_dir,
            compare_with: cli.compare_with,
        }) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: could not open a window: {e}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}
