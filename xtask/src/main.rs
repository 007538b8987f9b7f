//! Project tasks, so a fresh clone needs only the Rust toolchain:
//!
//! - `cargo xtask test`: installs the two Wasm targets, Debian's nginx-light (which the
//!   fleet tests run) when nginx is missing, Debian's chromium and chromium-driver (the status
//!   page's browser test) when they are, and the pinned Python packages of
//!   `tools/python-test-requirements.txt` (the S3-compatible server of the store tests, and the
//!   rest) in a venv under `target/py`; builds the Wasm kernels; runs the whole test suite.
//! - `cargo xtask helix ARGS...`: builds the Wasm kernels and `helix` (release) and runs it with
//!   the bundled manifests (`cargo xtask helix serve`, `cargo xtask helix run mc-option ...`).
//! - `cargo xtask kernels`: builds the Wasm kernels only.
//!
//! `cargo xtask helix fleet` (and `helix soak --replicas N`) installs nginx-light first when
//! nginx is missing, as the tests do.
//!
//! Building the Wasm kernels compiles `kernels/guests` for wasm32-unknown-unknown (core modules,
//! which the host wraps into components without WASI shims), the hostile test guests of
//! `tests/guests` for wasm32-wasip2 (some of them need WASI to misbehave), and stages each guest
//! that has a `kernel.toml` into `manifests/wasm/`: the module, and its manifest with the
//! module's sha256 (a bundled kernel's `kernel.toml` names its native manifest as `base` and
//! replaces its cost model). `manifests/wasm/` is build output and never committed.
//!
//! Every step echoes the command it runs.

use std::process::{Command, ExitCode};

/// The bundled kernels' target: a core module that imports nothing.
const KERNEL_TARGET: &str = "wasm32-unknown-unknown";
/// The hostile test guests' target: a component linking the standard library's WASI.
const HOSTILE_TARGET: &str = "wasm32-wasip2";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("helix") => helix(&args[1..]),
        Some("kernels") => build_kernels().map(|_| ()),
        _ => {
            eprintln!(
                "usage: cargo xtask test [cargo test args] | cargo xtask helix [helix args] | cargo xtask kernels"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("+ {program} {}", args.join(" "));
    let status = Command::new(program).args(args).status().map_err(|e| format!("cannot start {program}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("`{program} {}` failed with {status}", args.join(" "))) }
}

/// The Wasm targets come through rustup; a toolchain without rustup must already have them.
fn ensure_wasm_target() -> Result<(), String> {
    run("rustup", &["target", "add", KERNEL_TARGET, HOSTILE_TARGET])
}

/// Installs Debian `packages` with apt (one update, one install), their services kept from
/// starting (a `policy-rc.d` that denies them, as in containers): the tests run their own
/// servers on loopback.
fn apt_install(packages: &[&str]) -> Result<(), String> {
    let policy = std::path::Path::new("/usr/sbin/policy-rc.d");
    let added_policy = !policy.exists() && std::fs::write(policy, "#!/bin/sh\nexit 101\n").is_ok();
    if added_policy {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755));
    }
    let installed = run("apt-get", &["update", "-qq"]).and_then(|()| {
        let list = packages.join(" ");
        eprintln!("+ apt-get install -y -qq {list}");
        let status = Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("cannot start apt-get: {e}"))?;
        if status.success() { Ok(()) } else { Err(format!("apt-get install {list} failed with {status}")) }
    });
    if added_policy {
        let _ = std::fs::remove_file(policy);
    }
    installed
}

/// nginx, for the fleet tests and `helix fleet`: `HELIX_NGINX`, `nginx` on the PATH, or
/// Debian's (`/usr/sbin`, off a non-root PATH); when there is none, Debian's `nginx-light` is
/// installed.
fn ensure_nginx() -> Result<std::path::PathBuf, String> {
    let works = |p: &std::path::Path| Command::new(p).arg("-v").output().is_ok_and(|o| o.status.success());
    let candidates = std::env::var_os("HELIX_NGINX")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain(["nginx", "/usr/sbin/nginx"].map(std::path::PathBuf::from));
    if let Some(found) = candidates.clone().find(|p| works(p)) {
        return Ok(found);
    }
    apt_install(&["nginx-light"])
        .map_err(|e| format!("{e}: install nginx (Debian: apt-get install nginx-light) or set HELIX_NGINX"))?;
    candidates.into_iter().find(|p| works(p)).ok_or_else(|| "nginx-light installed, but no nginx runs".to_string())
}

/// Prometheus and promtool, for the tests of `deploy/prometheus` (`HELIX_PROMETHEUS`,
/// `HELIX_PROMTOOL`): on the PATH or Debian's (`/usr/bin`); when either is missing, Debian's
/// `prometheus` package is installed (its service kept from starting: the tests run their own).
fn ensure_prometheus() -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let works = |p: &std::path::Path| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success());
    let find = |name: &str| {
        [std::path::PathBuf::from(name), std::path::Path::new("/usr/bin").join(name)].into_iter().find(|p| works(p))
    };
    if let (Some(prometheus), Some(promtool)) = (find("prometheus"), find("promtool")) {
        return Ok((prometheus, promtool));
    }
    apt_install(&["prometheus"]).map_err(|e| format!("{e}: install Prometheus and promtool (Debian: prometheus)"))?;
    match (find("prometheus"), find("promtool")) {
        (Some(prometheus), Some(promtool)) => Ok((prometheus, promtool)),
        _ => Err("prometheus installed, but prometheus or promtool does not run".to_string()),
    }
}

/// Chromium and its WebDriver, for the browser test of the status page (`HELIX_CHROMIUM`,
/// `HELIX_CHROMEDRIVER`): on the PATH or Debian's (`/usr/bin`); when either is missing,
/// Debian's `chromium` and `chromium-driver` are installed.
fn ensure_chromium() -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let works = |p: &std::path::Path| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success());
    // Full paths: chromedriver is handed the browser's, and looks for no other on the PATH.
    let find = |name: &str| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([std::path::PathBuf::from("/usr/bin")])
            .map(|dir| dir.join(name))
            .find(|p| p.is_absolute() && works(p))
    };
    if let (Some(chromium), Some(driver)) = (find("chromium"), find("chromedriver")) {
        return Ok((chromium, driver));
    }
    apt_install(&["chromium", "chromium-driver"])
        .map_err(|e| format!("{e}: install Chromium and chromedriver (Debian: chromium chromium-driver)"))?;
    match (find("chromium"), find("chromedriver")) {
        (Some(chromium), Some(driver)) => Ok((chromium, driver)),
        _ => Err("chromium and chromium-driver installed, but chromium or chromedriver does not run".to_string()),
    }
}

/// The Python the tests run (`HELIX_PYTHON`): a virtual environment under `target/py` holding
/// `tools/python-test-requirements.txt` (pinned: `moto[server]`, the S3-compatible server of the
/// store tests, and the rest), reinstalled when that file changes; Debian's `python3-venv` is
/// installed when Python cannot make one.
fn ensure_python() -> Result<std::path::PathBuf, String> {
    let requirements = root().join("tools/python-test-requirements.txt");
    let wanted =
        std::fs::read_to_string(&requirements).map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    let venv = root().join("target/py");
    let python = venv.join("bin/python");
    let stamp = venv.join("installed-requirements.txt");
    let works = |p: &std::path::Path| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success());
    if works(&python) && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(python);
    }
    let venv_str = venv.to_str().ok_or("target path is not UTF-8")?;
    if !works(&python) && run("python3", &["-m", "venv", "--clear", venv_str]).is_err() {
        apt_install(&["python3-venv"]).map_err(|e| format!("{e}: install python3-venv"))?;
        run("python3", &["-m", "venv", "--clear", venv_str])?;
    }
    let requirements_str = requirements.to_str().ok_or("path is not UTF-8")?;
    let pip = venv.join("bin/pip");
    let pip_str = pip.to_str().ok_or("path is not UTF-8")?;
    // From the root: the requirements name the checkout's own packages by relative path.
    let pip_args = ["install", "--quiet", "--disable-pip-version-check", "-r", requirements_str];
    eprintln!("+ {pip_str} {}", pip_args.join(" "));
    let status =
        Command::new(&pip).args(pip_args).current_dir(root()).status().map_err(|e| format!("cannot start pip: {e}"))?;
    if !status.success() {
        return Err(format!("pip install -r {requirements_str} failed with {status}"));
    }
    std::fs::write(&stamp, wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(python)
}

fn test(extra: &[String]) -> Result<(), String> {
    build_kernels()?;
    let nginx = ensure_nginx()?;
    let python = ensure_python()?;
    let moto = python.with_file_name("moto_server");
    let (prometheus, promtool) = ensure_prometheus()?;
    let (chromium, chromedriver) = ensure_chromium()?;
    let mut args = vec!["test", "--workspace"];
    args.extend(extra.iter().map(String::as_str));
    eprintln!("+ cargo {}", args.join(" "));
    // Stream the output and total the per-binary results into one closing line.
    let mut child = Command::new("cargo")
        .args(&args)
        .env("HELIX_NGINX", &nginx)
        .env("HELIX_MOTO", &moto)
        .env("HELIX_PYTHON", &python)
        .env("HELIX_PROMETHEUS", &prometheus)
        .env("HELIX_PROMTOOL", &promtool)
        .env("HELIX_CHROMIUM", &chromium)
        .env("HELIX_CHROMEDRIVER", &chromedriver)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    let (mut passed, mut failed) = (0u64, 0u64);
    let stdout = child.stdout.take().expect("piped stdout");
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.map_err(|e| e.to_string())?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| {
                rest.split(';').find_map(|part| {
                    part.trim()
                        .trim_start_matches("ok. ")
                        .trim_start_matches("FAILED. ")
                        .strip_suffix(word)?
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
            };
            passed += count(" passed").unwrap_or(0);
            failed += count(" failed").unwrap_or(0);
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    println!("{passed} passed, {failed} failed");
    if status.success() { Ok(()) } else { Err(format!("cargo test failed with {status}")) }
}

/// The workspace root (xtask lives one level below it).
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

fn helix(args: &[String]) -> Result<(), String> {
    build_kernels()?;
    run("cargo", &["build", "--release", "--package", "helix-host", "--bin", "helix"])?;
    let root = root();
    let bin = root.join("target/release/helix");
    let mut command = Command::new(&bin);
    // A fleet, or a soak of one, runs nginx.
    if args.first().is_some_and(|a| a == "fleet")
        || args.first().is_some_and(|a| a == "soak") && args.iter().any(|a| a.starts_with("--replicas"))
    {
        command.env("HELIX_NGINX", ensure_nginx()?);
    }
    eprintln!("+ {} {}", bin.display(), args.join(" "));
    command.args(args).env("HELIX_MANIFESTS", root.join("manifests"));
    // `cargo run` execs xtask; xtask execs helix: the process `cargo xtask helix serve` started
    // is the server itself, so a SIGTERM or Ctrl-C sent to it reaches helix, which drains,
    // instead of killing a parent and leaving helix holding its port.
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let e = command.exec();
        Err(format!("cannot start {}: {e}", bin.display()))
    }
    #[cfg(not(unix))]
    {
        let status = command.status().map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        if status.success() { Ok(()) } else { Err(format!("helix exited with {status}")) }
    }
}

/// Builds both guest workspaces and stages the bundled kernels.
fn build_kernels() -> Result<Vec<std::path::PathBuf>, String> {
    ensure_wasm_target()?;
    let root = root();
    let target_dir = root.join("target/wasm");
    let target_dir = target_dir.to_str().ok_or("target path is not UTF-8")?;
    let guests = root.join("kernels/guests/Cargo.toml");
    let guests = guests.to_str().ok_or("path is not UTF-8")?;
    run(
        "cargo",
        &["build", "--release", "--target", KERNEL_TARGET, "--manifest-path", guests, "--target-dir", target_dir],
    )?;
    let hostile = root.join("tests/guests/Cargo.toml");
    if hostile.exists() {
        let hostile = hostile.to_str().ok_or("path is not UTF-8")?;
        run(
            "cargo",
            &["build", "--release", "--target", HOSTILE_TARGET, "--manifest-path", hostile, "--target-dir", target_dir],
        )?;
    }
    stage_bundled(&root)
}

/// Writes `manifests/wasm/NAME.wasm` and `manifests/wasm/NAME.toml` for every guest with a
/// `kernel.toml`.
fn stage_bundled(root: &std::path::Path) -> Result<Vec<std::path::PathBuf>, String> {
    use sha2::Digest;
    let out_dir = root.join("manifests/wasm");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let built = root.join("target/wasm").join(KERNEL_TARGET).join("release");
    let mut staged = Vec::new();
    let mut guests: Vec<_> = std::fs::read_dir(root.join("kernels/guests"))
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("kernel.toml").exists())
        .collect();
    guests.sort();
    for dir in guests {
        let read = |p: &std::path::Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
        let template: toml::Table =
            read(&dir.join("kernel.toml"))?.parse().map_err(|e| format!("{}: {e}", dir.display()))?;
        let crate_name = dir.file_name().and_then(|n| n.to_str()).ok_or("bad guest folder name")?;
        let mut manifest = match template.get("base").and_then(|b| b.as_str()) {
            Some(base) => {
                let path = root.join("manifests").join(format!("{base}.toml"));
                let mut t: toml::Table = read(&path)?.parse().map_err(|e| format!("{}: {e}", path.display()))?;
                t.remove("entry");
                t
            }
            None => toml::Table::new(),
        };
        for (k, v) in template {
            if k != "base" {
                manifest.insert(k, v);
            }
        }
        let name = manifest
            .get("name")
            .and_then(|n| n.as_str())
            .ok_or(format!("{crate_name}: kernel.toml names no kernel"))?
            .to_string();
        let module = built.join(format!("{}_guest.wasm", crate_name.replace('-', "_")));
        let bytes = std::fs::read(&module).map_err(|e| format!("{}: {e}", module.display()))?;
        let sha: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        let file = format!("{name}.wasm");
        std::fs::write(out_dir.join(&file), &bytes).map_err(|e| e.to_string())?;
        manifest.insert("runtime".into(), toml::Value::String("wasm".into()));
        let mut m = toml::Table::new();
        m.insert("path".into(), toml::Value::String(file));
        m.insert("sha256".into(), toml::Value::String(sha));
        manifest.insert("module".into(), toml::Value::Table(m));
        let text = format!(
            "# Generated by `cargo xtask` from kernels/guests/{crate_name}/kernel.toml: do not edit.\n{}",
            toml::to_string(&manifest).map_err(|e| e.to_string())?
        );
        let path = out_dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        eprintln!("staged {}", path.display());
        staged.push(path);
    }
    Ok(staged)
}
