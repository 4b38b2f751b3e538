//! The NAT rules that make the credentials endpoint answer at `169.254.170.2:80`, as on
//! ECS: a DNAT in `nat/PREROUTING` for containers and one in `nat/OUTPUT` for host-mode
//! containers and the host itself. Unlike ecs-init, the target is the agent's listener
//! on the Docker bridge gateway, a local address every container network reaches, so
//! `route_localnet` need not be turned on; without a bridge, only the OUTPUT rule is
//! installed, towards the loopback listener.
//!
//! The rules ([`compute_rules`]) are pure; [`install`] applies them with `iptables`
//! idempotently (checked with `-C` first), refuses to take over a rule of another live
//! agent, and [`NatGuard::remove`] takes them away on clean exit. Agents of one process
//! share one set of rules (their credentials store is shared too).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

/// The address containers ask for credentials.
pub const LINK_LOCAL: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 2);
/// Its port.
pub const LINK_LOCAL_PORT: u16 = 80;
/// The comment that marks Stevedore's rules.
pub const COMMENT: &str = "stevedore-task-credentials";

/// One rule of the `nat` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// `PREROUTING` or `OUTPUT`.
    pub chain: &'static str,
    /// The match and target, as `iptables` arguments after the chain.
    pub spec: Vec<String>,
}

impl Rule {
    /// The DNAT target (`ip:port`) of the rule.
    pub fn target(&self) -> Option<&str> {
        let at = self.spec.iter().position(|a| a == "--to-destination")?;
        self.spec.get(at + 1).map(String::as_str)
    }
}

/// The rules leading `169.254.170.2:80` to the listener on `bridge` (what containers
/// reach) and, for the host's own traffic, to `bridge` too or else `local`.
pub fn compute_rules(bridge: Option<SocketAddr>, local: SocketAddr) -> Vec<Rule> {
    let spec = |to: SocketAddr| -> Vec<String> {
        [
            "-d",
            &format!("{LINK_LOCAL}/32"),
            "-p",
            "tcp",
            "-m",
            "tcp",
            "--dport",
            &LINK_LOCAL_PORT.to_string(),
            "-m",
            "comment",
            "--comment",
            COMMENT,
            "-j",
            "DNAT",
            "--to-destination",
            &to.to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    let mut rules = Vec::new();
    if let Some(b) = bridge {
        rules.push(Rule {
            chain: "PREROUTING",
            spec: spec(b),
        });
    }
    rules.push(Rule {
        chain: "OUTPUT",
        spec: spec(bridge.unwrap_or(local)),
    });
    rules
}

/// Stevedore rules in `iptables -t nat -S <chain>` output, as rules.
pub fn parse_listed(chain: &'static str, listing: &str) -> Vec<Rule> {
    listing
        .lines()
        .filter(|l| l.contains(COMMENT))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("-A") && words.next() == Some(chain)).then(|| Rule {
                chain,
                spec: words.map(|w| w.trim_matches('"').to_owned()).collect(),
            })
        })
        .collect()
}

/// Why the rules could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum NatError {
    /// `iptables` could not run or refused (not root, no netfilter).
    #[error("iptables {args}: {message}")]
    Iptables {
        /// The arguments given.
        args: String,
        /// Its error output, or why it could not run.
        message: String,
    },
    /// Another live agent's rule holds the address.
    #[error("169.254.170.2 already leads to another agent at {0}")]
    Taken(String),
}

/// Rules this process installed, and how many agents use them.
static INSTALLED: Mutex<Option<(Vec<Rule>, usize)>> = Mutex::new(None);

/// Installed rules; [`NatGuard::remove`] takes them away when the last agent of the
/// process that uses them stops.
#[derive(Debug)]
pub struct NatGuard {
    _private: (),
}

async fn iptables(args: &[&str]) -> Result<String, NatError> {
    let output = tokio::process::Command::new("iptables")
        .arg("-w")
        .args(args)
        .output()
        .await
        .map_err(|e| NatError::Iptables {
            args: args.join(" "),
            message: e.to_string(),
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(NatError::Iptables {
            args: args.join(" "),
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

async fn rule_op(op: &str, rule: &Rule) -> Result<String, NatError> {
    let mut args = vec!["-t", "nat", op, rule.chain];
    if op == "-I" {
        args.push("1");
    }
    args.extend(rule.spec.iter().map(String::as_str));
    iptables(&args).await
}

/// Whether something answers at `target` (an agent that owns a rule found in place).
async fn is_live(target: &str) -> bool {
    let Ok(addr) = target.parse::<SocketAddr>() else {
        return false;
    };
    matches!(
        tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(addr)
        )
        .await,
        Ok(Ok(_))
    )
}

/// Installs `rules` (idempotently). A Stevedore rule already there that leads elsewhere
/// is replaced when nothing answers at its target (an agent that died), and makes this
/// agent give up ([`NatError::Taken`]) when another agent does.
pub async fn install(rules: Vec<Rule>) -> Result<NatGuard, NatError> {
    {
        let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, users)) = installed.as_mut() {
            *users += 1;
            return Ok(NatGuard { _private: () });
        }
    }
    for rule in &rules {
        let listing = iptables(&["-t", "nat", "-S", rule.chain]).await?;
        for found in parse_listed(rule.chain, &listing) {
            if found == *rule {
                continue;
            }
            let target = found.target().unwrap_or_default().to_owned();
            if is_live(&target).await {
                return Err(NatError::Taken(target));
            }
            tracing::info!(chain = rule.chain, target = %target, "Removing a stale credentials NAT rule of an agent that is gone.");
            rule_op("-D", &found).await?;
        }
        if rule_op("-C", rule).await.is_err() {
            rule_op("-I", rule).await?;
        }
    }
    let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
    match installed.as_mut() {
        Some((_, users)) => *users += 1,
        None => *installed = Some((rules, 1)),
    }
    Ok(NatGuard { _private: () })
}

impl NatGuard {
    /// Removes the rules when no other agent of the process uses them.
    pub async fn remove(self) {
        let rules = {
            let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
            match installed.as_mut() {
                Some((_, users)) if *users > 1 => {
                    *users -= 1;
                    return;
                }
                _ => installed.take().map(|(rules, _)| rules).unwrap_or_default(),
            }
        };
        for rule in &rules {
            while rule_op("-C", rule).await.is_ok() {
                if let Err(error) = rule_op("-D", rule).await {
                    tracing::warn!(%error, "Could not remove the credentials NAT rule.");
                    break;
                }
            }
        }
        if !rules.is_empty() {
            tracing::info!("Credentials NAT rules removed.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn containers_and_the_host_are_led_to_the_bridge_listener() {
        let rules = compute_rules(Some(addr("172.17.0.1:51679")), addr("127.0.0.1:51679"));
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].chain, "PREROUTING");
        assert_eq!(
            rules[0].spec.join(" "),
            "-d 169.254.170.2/32 -p tcp -m tcp --dport 80 -m comment --comment stevedore-task-credentials -j DNAT --to-destination 172.17.0.1:51679"
        );
        assert_eq!(rules[1].chain, "OUTPUT");
        assert_eq!(rules[1].target(), Some("172.17.0.1:51679"));
    }

    #[test]
    fn without_a_bridge_only_the_host_is_led_to_loopback() {
        let rules = compute_rules(None, addr("127.0.0.1:40000"));
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].chain, "OUTPUT");
        assert_eq!(rules[0].target(), Some("127.0.0.1:40000"));
    }

    #[test]
    fn listed_rules_read_back_equal_to_the_built_ones() {
        let rules = compute_rules(Some(addr("172.17.0.1:51679")), addr("127.0.0.1:51679"));
        let listing = format!(
            "-P PREROUTING ACCEPT\n-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n-A PREROUTING {}\n",
            rules[0]
                .spec
                .join(" ")
                .replace(COMMENT, &format!("\"{COMMENT}\""))
        );
        assert_eq!(parse_listed("PREROUTING", &listing), vec![rules[0].clone()]);
        assert!(parse_listed("OUTPUT", &listing).is_empty());
    }
}
