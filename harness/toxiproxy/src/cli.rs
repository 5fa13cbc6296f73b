//! Command-line flags, spelled as Toxiproxy's (Go `flag` style: `-port 8474`, `-port=8474`, `--port`).

use std::path::PathBuf;

pub const USAGE: &str = "\
usage: toxiproxy-server [-host HOST] [-port PORT] [-config FILE] [-seed N] [-version]
  -host HOST     address for the API to listen on (default 127.0.0.1)
  -port PORT     port for the API to listen on (default 8474)
  -config FILE   JSON array of proxies to create at start, as for POST /populate
  -seed N        accepted for compatibility; toxicity draws are not seeded here
  -version       print the version and exit";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub host: String,
    pub port: u16,
    pub config: Option<PathBuf>,
    pub seed: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Serve(Options),
    PrintVersion,
    PrintHelp,
}

/// Parses the arguments after the program name; the error is a one-line message.
pub fn parse(arguments: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut options = Options {
        host: "127.0.0.1".to_owned(),
        port: 8474,
        config: None,
        seed: None,
    };
    let mut arguments = arguments.into_iter();
    while let Some(argument) = arguments.next() {
        let Some(flag) = argument.strip_prefix("--").or_else(|| argument.strip_prefix('-')) else {
            return Err(format!("unexpected argument {argument:?}"));
        };
        let (flag, inline_value) = match flag.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_owned())),
            None => (flag, None),
        };
        let mut value = |name: &str| {
            inline_value
                .clone()
                .or_else(|| arguments.next())
                .ok_or_else(|| format!("flag -{name} needs a value"))
        };
        match flag {
            "host" => options.host = value("host")?,
            "port" => {
                let text = value("port")?;
                options.port = text
                    .parse()
                    .map_err(|_| format!("-port must be a number from 0 to 65535, got {text:?}"))?;
            }
            "config" => options.config = Some(PathBuf::from(value("config")?)),
            "seed" => {
                let text = value("seed")?;
                let seed = text
                    .parse()
                    .map_err(|_| format!("-seed must be an integer, got {text:?}"))?;
                options.seed = Some(seed);
            }
            "version" if is_true(inline_value.as_deref())? => return Ok(Command::PrintVersion),
            "version" => {}
            "h" | "help" => return Ok(Command::PrintHelp),
            "runtime-metrics" | "proxy-metrics" => {
                return Err(format!(
                    "-{flag}: Prometheus metrics are not served by this server"
                ));
            }
            _ => return Err(format!("unknown flag -{flag}")),
        }
    }
    Ok(Command::Serve(options))
}

/// A Go boolean flag is true when given bare or as `=true`/`=1`.
fn is_true(inline_value: Option<&str>) -> Result<bool, String> {
    match inline_value {
        None | Some("true" | "1" | "t" | "T" | "TRUE" | "True") => Ok(true),
        Some("false" | "0" | "f" | "F" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(format!("-version takes true or false, got {other:?}")),
    }
}
