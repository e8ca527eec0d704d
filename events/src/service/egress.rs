//! Where cstrack may send a request whose address an admin typed (webhooks): anywhere on the
//! public internet, never to this machine, a private or link-local network, or a cloud metadata
//! service, unless the operator's allow-list (`CSTRACK_WEBHOOK_ALLOW`) names the address or the
//! host. An address is checked when it is registered and again at every delivery, after DNS
//! resolution, since a name may resolve elsewhere tomorrow (docs/NOTIFICATIONS.md).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// Host names of metadata services, refused whatever they resolve to.
const METADATA_HOSTS: &[&str] = &[
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
];

/// What the operator allows beyond the public internet: networks (`10.1.0.0/16`, `127.0.0.1`)
/// and host names (`hooks.corp.example`, which may then resolve to any address).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EgressPolicy {
    networks: Vec<(IpAddr, u8)>,
    hosts: Vec<String>,
}

/// Why an address is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("{host} resolves to {ip}, {why}; cstrack calls no such address unless CSTRACK_WEBHOOK_ALLOW names it")]
    Internal {
        host: String,
        ip: IpAddr,
        why: &'static str,
    },
    #[error("{host} is a cloud metadata service; cstrack never calls it unless CSTRACK_WEBHOOK_ALLOW names it")]
    Metadata { host: String },
    #[error("{host} could not be resolved: {error}")]
    Unresolvable { host: String, error: String },
}

impl Refusal {
    /// The error code an API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Internal { .. } | Refusal::Metadata { .. } => "internal_address",
            Refusal::Unresolvable { .. } => "unresolvable_host",
        }
    }
}

impl FromStr for EgressPolicy {
    type Err = String;

    /// A comma-separated list of networks (`a.b.c.d/n`, `x::/n` or a single address) and host
    /// names; empty allows nothing beyond the public internet.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut policy = EgressPolicy::default();
        for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let (address, prefix) = match item.split_once('/') {
                Some((address, prefix)) => (address, Some(prefix)),
                None => (item, None),
            };
            match address.trim_matches(['[', ']']).parse::<IpAddr>() {
                Ok(ip) => {
                    let most = if ip.is_ipv4() { 32 } else { 128 };
                    let prefix = match prefix {
                        None => most,
                        Some(prefix) => prefix
                            .parse::<u8>()
                            .ok()
                            .filter(|prefix| *prefix <= most)
                            .ok_or_else(|| format!("{item:?}: the prefix length is 0 to {most}"))?,
                    };
                    policy.networks.push((ip, prefix));
                }
                Err(_) if prefix.is_none() && is_host_name(item) => policy.hosts.push(item.to_ascii_lowercase()),
                Err(_) => {
                    return Err(format!(
                        "{item:?} is neither a network (10.0.0.0/8), an address nor a host name"
                    ))
                }
            }
        }
        Ok(policy)
    }
}

fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text
            .split('.')
            .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

impl EgressPolicy {
    /// Whether the operator names `host` itself.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|allowed| *allowed == host)
    }

    /// Why `ip` may not be called, or `None` when it may.
    pub fn refuses_ip(&self, ip: IpAddr) -> Option<&'static str> {
        if self
            .networks
            .iter()
            .any(|(network, prefix)| contains(*network, *prefix, ip))
        {
            return None;
        }
        internal(ip)
    }

    /// Checks a host (a name or an address literal, brackets allowed) and resolves it: every
    /// address it resolves to must be callable, so a name that also points inside is refused.
    pub async fn check(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
        let bare = host.trim_matches(['[', ']']);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.check_literal(host)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        self.check_literal(bare)?;
        let addresses = resolve(bare, port).await?;
        self.check_addresses(bare, &addresses)?;
        Ok(addresses)
    }

    /// What can be judged of a host without resolving it: an address literal, or a name that
    /// is refused whatever it resolves to (metadata services, `localhost`).
    pub fn check_literal(&self, host: &str) -> Result<(), Refusal> {
        match host.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => match self.refuses_ip(ip) {
                None => Ok(()),
                Some(why) => Err(Refusal::Internal {
                    host: host.to_owned(),
                    ip,
                    why,
                }),
            },
            Err(_) => self.check_name(host),
        }
    }

    /// A name refused before any resolution: metadata services and `localhost`.
    pub fn check_name(&self, host: &str) -> Result<(), Refusal> {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        if self.allows_host(&name) {
            return Ok(());
        }
        if METADATA_HOSTS.contains(&name.as_str()) {
            return Err(Refusal::Metadata { host: host.to_owned() });
        }
        if name == "localhost" || name.ends_with(".localhost") {
            return Err(Refusal::Internal {
                host: host.to_owned(),
                ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                why: "this machine",
            });
        }
        Ok(())
    }

    /// Every resolved address of `host` must be callable (unless the host itself is allowed).
    pub fn check_addresses(&self, host: &str, addresses: &[SocketAddr]) -> Result<(), Refusal> {
        if self.allows_host(host) {
            return Ok(());
        }
        match addresses
            .iter()
            .find_map(|address| self.refuses_ip(address.ip()).map(|why| (address.ip(), why)))
        {
            Some((ip, why)) => Err(Refusal::Internal {
                host: host.to_owned(),
                ip,
                why,
            }),
            None => Ok(()),
        }
    }
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
    let unresolvable = |error: String| Refusal::Unresolvable {
        host: host.to_owned(),
        error,
    };
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|error| unresolvable(error.to_string()))?
        .collect();
    if addresses.is_empty() {
        return Err(unresolvable("no address".into()));
    }
    Ok(addresses)
}

fn contains(network: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (network, canonical(ip)) {
        (IpAddr::V4(network), IpAddr::V4(ip)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(network) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(network), IpAddr::V6(ip)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(network) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

/// An IPv6 address that carries an IPv4 one (mapped, compatible, NAT64, 6to4) as that IPv4
/// address, so `::ffff:127.0.0.1` is judged as `127.0.0.1`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low = Ipv4Addr::from(bits as u32);
    let segments = ip.segments();
    if bits >> 32 == 0xffff || (bits >> 32 == 0 && bits > 1) {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated; not :: or ::1).
        Some(low)
    } else if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64's well-known prefix 64:ff9b::/96.
        Some(low)
    } else if segments[0] == 0x2002 {
        // 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
        Some(Ipv4Addr::from(
            ((u32::from(segments[1])) << 16) | u32::from(segments[2]),
        ))
    } else {
        None
    }
}

/// Why an address is internal, or `None` for a public one.
fn internal(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(match (a, b) {
                (0, _) => "an unspecified address",
                (127, _) => "a loopback address (this machine)",
                (10, _) | (192, 168) => "a private network",
                (172, 16..=31) => "a private network",
                (100, 64..=127) => "a shared (carrier-grade NAT) network",
                (169, 254) => "a link-local address (where cloud metadata services answer)",
                (192, 0) if c == 0 => "an IETF protocol address",
                (198, 18..=19) => "a benchmarking network",
                (224..=239, _) => "a multicast address",
                (240..=255, _) => "a reserved address",
                // Azure's host endpoint, which answers metadata requests like 169.254.169.254.
                _ if v4 == Ipv4Addr::new(168, 63, 129, 16) => "a cloud metadata address",
                _ => return None,
            })
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            Some(if v6.is_unspecified() {
                "an unspecified address"
            } else if v6.is_loopback() {
                "a loopback address (this machine)"
            } else if first & 0xfe00 == 0xfc00 {
                "a private network (unique local)"
            } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
                "a link-local address"
            } else if first & 0xff00 == 0xff00 {
                "a multicast address"
            } else {
                return None;
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &EgressPolicy, ip: &str) -> bool {
        policy.refuses_ip(ip.parse().unwrap()).is_some()
    }

    #[test]
    fn internal_addresses_are_refused_in_every_spelling_and_public_ones_pass() {
        let policy = EgressPolicy::default();
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "168.63.129.16",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "ff02::1",
        ] {
            assert!(refused(&policy, ip), "{ip} must be refused");
        }
        for ip in [
            "93.184.215.14",
            "172.32.0.1",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "192.0.2.1",
        ] {
            assert!(!refused(&policy, ip), "{ip} is public");
        }
    }

    #[test]
    fn the_allow_list_names_networks_and_hosts() {
        let policy: EgressPolicy = "127.0.0.1, 10.20.0.0/16, hooks.corp.example, fd00::/8".parse().unwrap();
        assert!(!refused(&policy, "127.0.0.1"));
        assert!(refused(&policy, "127.0.0.2"));
        assert!(!refused(&policy, "10.20.99.1"));
        assert!(refused(&policy, "10.21.0.1"));
        assert!(!refused(&policy, "fd12::1"));
        assert!(!refused(&policy, "::ffff:127.0.0.1"));
        assert!(policy.allows_host("Hooks.Corp.Example."));
        assert!(!policy.allows_host("corp.example"));
        for bad in ["10.0.0.0/33", "::/129", "not a host", "1.2.3.4/x"] {
            assert!(bad.parse::<EgressPolicy>().is_err(), "{bad}");
        }
        assert_eq!("".parse::<EgressPolicy>().unwrap(), EgressPolicy::default());
    }

    #[tokio::test]
    async fn names_are_checked_by_what_they_resolve_to() {
        let policy = EgressPolicy::default();
        let refusal = policy.check("localhost", 80).await.unwrap_err();
        assert_eq!(refusal.code(), "internal_address");
        let refusal = policy.check("metadata.google.internal", 80).await.unwrap_err();
        assert_eq!(
            refusal,
            Refusal::Metadata {
                host: "metadata.google.internal".into()
            }
        );
        let refusal = policy.check("[::1]", 80).await.unwrap_err();
        assert_eq!(refusal.code(), "internal_address");
        assert_eq!(
            policy.check("93.184.215.14", 443).await.unwrap(),
            vec!["93.184.215.14:443".parse().unwrap()]
        );
        let allowed: EgressPolicy = "localhost".parse().unwrap();
        assert!(allowed.check("localhost", 80).await.is_ok());
    }
}
