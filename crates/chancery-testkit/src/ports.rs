//! Loopback ports: free ones to name in a server's configuration before it starts, and whether
//! one accepts connections.

use std::net::{TcpListener, TcpStream};

/// A loopback port free now (the OS's choice).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `n` loopback ports free now, all distinct: for servers that need their ports before they
/// start (a cluster's routes name each other's).
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    // All held at once, so that the OS cannot hand out one of them twice.
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// Whether something accepts connections on `address` (`host:port`) now.
pub fn accepts(address: &str) -> bool {
    TcpStream::connect(address).is_ok()
}
