//! `facegate` subcommands for the policy crate: `init`, `lint`, `notice`,
//! `pia`, `filing deadline`, `filing pack`.

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use facegate_policy as policy;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Write a commented, valid scenario manifest (Chinese + English).
    Init {
        /// Template: residential-gate (小区门禁) or hotel-checkin (酒店入住).
        #[arg(long, default_value = "residential-gate")]
        template: String,
        /// Output file ("-" for standard output).
        #[arg(short = 'o', long, default_value = "scenario.toml")]
        output: String,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Check a scenario manifest against the Measures (exit 1 on any error).
    Lint {
        /// Manifest file(s).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Machine-readable JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Render the Art. 5 notice of a manifest, or what changed from an older one.
    Notice {
        /// Manifest file.
        file: PathBuf,
        /// Language: zh or en.
        #[arg(long, default_value = "zh")]
        lang: String,
        /// HTML instead of text.
        #[arg(long)]
        html: bool,
        /// Show only the items changed since this older manifest (R5).
        #[arg(long)]
        since: Option<PathBuf>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Generate the impact-assessment (PIA) report of a manifest (R13).
    Pia {
        /// Manifest file.
        file: PathBuf,
        /// Distinct persons with stored face information.
        #[arg(long, default_value_t = 0)]
        headcount: u64,
        /// A security measure in place (repeat).
        #[arg(long = "measure")]
        measures: Vec<String>,
        /// A major incident since the last assessment (repeat).
        #[arg(long = "incident")]
        incidents: Vec<String>,
        /// Report id.
        #[arg(long, default_value = "PIA-1")]
        id: String,
        /// Assessment date (YYYY-MM-DD).
        #[arg(long)]
        date: NaiveDate,
        /// Assessor.
        #[arg(long, default_value = "")]
        assessor: String,
        /// Output format: md or html.
        #[arg(long, default_value = "md")]
        format: String,
        /// Output file (default: standard output).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Filing with the CAC (R21–R23).
    Filing {
        #[command(subcommand)]
        cmd: FilingCmd,
    },
}

#[derive(clap::Subcommand)]
pub enum FilingCmd {
    /// Last day to file: 30 working days on the Chinese calendar.
    Deadline {
        /// Trigger date: threshold reached, change made, or use stopped (YYYY-MM-DD).
        #[arg(long)]
        reached: NaiveDate,
        /// initial, change or deregistration.
        #[arg(long, default_value = "initial")]
        kind: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// The filing pack (five Art. 15 contents) as one document.
    Pack {
        /// Manifest file(s) of the processor's scenarios.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Distinct persons with stored face information, all scenarios.
        #[arg(long)]
        headcount: u64,
        /// Date the 100,000 threshold was reached.
        #[arg(long)]
        reached: Option<NaiveDate>,
        /// A security measure in place (repeat).
        #[arg(long = "measure")]
        measures: Vec<String>,
        /// An operating procedure (repeat).
        #[arg(long = "procedure")]
        procedures: Vec<String>,
        /// Assessment date of the PIAs included.
        #[arg(long)]
        pia_date: NaiveDate,
        /// Output format: md or html.
        #[arg(long, default_value = "md")]
        format: String,
        /// Output file (default: standard output).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
}

pub fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Init {
            template,
            output,
            force,
        } => init(&template, &output, force),
        Cmd::Lint { files, json } => lint(&files, json),
        Cmd::Notice {
            file,
            lang,
            html,
            since,
            json,
        } => notice(&file, &lang, html, since.as_deref(), json),
        Cmd::Pia {
            file,
            headcount,
            measures,
            incidents,
            id,
            date,
            assessor,
            format,
            output,
        } => {
            let s = load(&file)?;
            let r = policy::pia_report(
                &s,
                &policy::PiaInputs {
                    report_id: id,
                    assessed_on: date,
                    assessor,
                    headcount,
                    security_measures: measures,
                    incidents,
                },
            );
            write_doc(&format, &r.markdown, &r.html, output.as_deref())?;
            let l = r.link();
            eprintln!(
                "# add to the manifest / 写入清单:\n[pia]\nid = {:?}\nassessed_on = {:?}\nfingerprint = {:?}",
                l.id, l.assessed_on, l.fingerprint
            );
            for g in &r.gaps {
                eprintln!("warning[R20]: missing Art. 14 measure / 缺少第十四条措施: {g}");
            }
            Ok(())
        }
        Cmd::Filing { cmd } => filing(cmd),
    }
}

fn init(template: &str, output: &str, force: bool) -> Result<()> {
    let Some(text) = policy::init_template(template) else {
        bail!(
            "unknown template {template:?} / 未知模板; choose one of: {}",
            policy::INIT_TEMPLATES.join(", ")
        );
    };
    if output == "-" {
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(());
    }
    let path = Path::new(output);
    if path.exists() && !force {
        bail!(
            "{} already exists; nothing was written (use --force to overwrite) / 文件已存在，未写入（覆盖请加 --force）",
            path.display()
        );
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "wrote {} ({template}); edit it, then run `facegate lint {}` / 已生成，请修改后运行 lint",
        path.display(),
        path.display()
    );
    Ok(())
}

fn read(file: &Path) -> Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
}

fn load(file: &Path) -> Result<policy::Scenario> {
    let src = read(file)?;
    let name = file.display().to_string();
    let report = policy::lint(&src, &name);
    if report.has_errors() {
        eprint!("{}", report.render(&src));
        bail!("{name}: the manifest has errors / 清单有错误 (run `facegate lint {name}`)");
    }
    report
        .scenario
        .context("manifest did not parse / 清单无法解析")
}

fn lint(files: &[PathBuf], json: bool) -> Result<()> {
    let mut failed = false;
    let mut reports = vec![];
    for f in files {
        let src = read(f)?;
        let report = policy::lint(&src, &f.display().to_string());
        failed |= report.has_errors();
        if json {
            reports.push(report.to_json());
        } else {
            print!("{}", report.render(&src));
        }
    }
    if json {
        let v = if reports.len() == 1 {
            reports.remove(0)
        } else {
            serde_json::Value::Array(reports)
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

fn lang_of(s: &str) -> Result<policy::Lang> {
    match s {
        "zh" | "zh-CN" | "zh-cn" => Ok(policy::Lang::Zh),
        "en" => Ok(policy::Lang::En),
        _ => bail!("--lang must be zh or en / 语言须为 zh 或 en"),
    }
}

fn notice(file: &Path, lang: &str, html: bool, since: Option<&Path>, json: bool) -> Result<()> {
    let lang = lang_of(lang)?;
    let s = load(file)?;
    let n = policy::render_notice(&s, lang);
    if let Some(old) = since {
        let o = policy::render_notice(&load(old)?, lang);
        let changes = policy::notice_changes(&o, &n);
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "old_version": o.version,
                    "new_version": n.version,
                    "changes": changes,
                    "requires_reconsent": policy::requires_reconsent(&changes),
                }))?
            );
        } else if changes.is_empty() {
            println!("no change / 无变更 ({})", n.version);
        } else {
            print!("{}", policy::render_changes(&changes, lang));
            if policy::requires_reconsent(&changes) {
                let r9 = policy::RuleId::R9;
                println!(
                    "{r9} / {}: purpose or method changed: fresh consent is needed / 目的或方式变更，须重新取得同意（{r9} {}）",
                    r9.article(),
                    r9.article_zh()
                );
            }
        }
        return Ok(());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&n)?);
    } else if html {
        print!("{}", n.html);
    } else {
        print!("{}", n.text);
    }
    Ok(())
}

fn write_doc(format: &str, md: &str, html: &str, out: Option<&Path>) -> Result<()> {
    let body = match format {
        "md" | "markdown" => md,
        "html" => html,
        _ => bail!("--format must be md or html"),
    };
    match out {
        Some(p) => {
            std::fs::write(p, body).with_context(|| format!("writing {}", p.display()))?;
            eprintln!("wrote {}", p.display());
        }
        None => print!("{body}"),
    }
    Ok(())
}

fn filing(cmd: FilingCmd) -> Result<()> {
    match cmd {
        FilingCmd::Deadline {
            reached,
            kind,
            json,
        } => {
            let kind = match kind.as_str() {
                "initial" => policy::FilingKind::Initial,
                "change" => policy::FilingKind::Change,
                "deregistration" => policy::FilingKind::Deregistration,
                _ => bail!("--kind must be initial, change or deregistration"),
            };
            let d = policy::filing_deadline(reached, kind);
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                println!("{}", d.last_day);
                if !d.provisional {
                    println!(
                        "final: every day counted is on the published calendar / 已确定：所计日期均在已公布的节假日安排内"
                    );
                } else {
                    println!(
                        "provisional: the count runs into a year whose holiday schedule is not published yet / 暂定：所涉年份的节假日安排尚未公布"
                    );
                }
            }
            Ok(())
        }
        FilingCmd::Pack {
            files,
            headcount,
            reached,
            measures,
            procedures,
            pia_date,
            format,
            output,
        } => {
            let scenarios = files.iter().map(|f| load(f)).collect::<Result<Vec<_>>>()?;
            let pias: Vec<_> = scenarios
                .iter()
                .map(|s| {
                    policy::pia_report(
                        s,
                        &policy::PiaInputs {
                            report_id: s
                                .pia
                                .as_ref()
                                .map(|p| p.id.clone())
                                .unwrap_or_else(|| format!("PIA-{}", s.id)),
                            assessed_on: pia_date,
                            assessor: String::new(),
                            headcount,
                            security_measures: measures.clone(),
                            incidents: vec![],
                        },
                    )
                })
                .collect();
            let pack = policy::filing_pack(
                &scenarios,
                &policy::FilingPackInputs {
                    headcount,
                    threshold_reached_on: reached,
                    security_measures: measures,
                    procedures,
                },
                &pias,
            );
            write_doc(&format, &pack.markdown, &pack.html, output.as_deref())
        }
    }
}
