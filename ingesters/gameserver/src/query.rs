//! The UDP exchanges: one socket per query, connected to the server so the kernel drops
//! datagrams from any other sender; split replies are reassembled by id.

use crate::a2s::{self, Reassembler, Reply};
use crate::q3;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::UdpSocket;

/// Largest UDP payload; ET:Legacy status replies exceed 1024 bytes and split A2S fragments are
/// ~1260, so a big buffer costs nothing and truncates nothing.
const RECV_BUF: usize = 65_535;
/// A server that keeps answering with new challenges is broken; stop asking.
const MAX_CHALLENGE_ROUNDS: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub struct A2sResult {
    pub info: a2s::Info,
    pub players: Vec<a2s::Player>,
    /// None when the server refused or ignored A2S_RULES (many do, on purpose).
    pub rules: Option<Vec<(String, String)>>,
}

async fn socket_for(addr: SocketAddr) -> Result<UdpSocket, String> {
    let local: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let sock = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("bind: {e}"))?;
    sock.connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    Ok(sock)
}

/// Sends one request and returns the reply payload once complete (single or reassembled).
async fn exchange(sock: &UdpSocket, request: &[u8]) -> Result<Vec<u8>, String> {
    sock.send(request).await.map_err(|e| format!("send: {e}"))?;
    let mut reasm = Reassembler::default();
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        let n = sock
            .recv(&mut buf)
            .await
            .map_err(|e| format!("recv: {e}"))?;
        if let Some(payload) = reasm.push(&buf[..n])? {
            return Ok(payload);
        }
    }
}

/// Runs the request/challenge dance: ask, and while the server answers with a challenge, ask
/// again with it.
async fn with_challenge<T>(
    sock: &UdpSocket,
    request: impl Fn(Option<i32>) -> Vec<u8>,
    parse: impl Fn(&[u8]) -> Result<Reply<T>, String>,
) -> Result<T, String> {
    let mut challenge = None;
    for _ in 0..MAX_CHALLENGE_ROUNDS {
        let payload = exchange(sock, &request(challenge)).await?;
        match parse(&payload)? {
            Reply::Data(d) => return Ok(d),
            Reply::Challenge(c) => challenge = Some(c),
        }
    }
    Err("server kept answering with challenges".into())
}

pub async fn query_a2s(addr: SocketAddr, timeout: Duration) -> Result<A2sResult, String> {
    let timed_out = || format!("timeout after {} ms", timeout.as_millis());
    let (sock, info, players) = tokio::time::timeout(timeout, async {
        let sock = socket_for(addr).await?;
        let info = with_challenge(&sock, a2s::info_request, a2s::parse_info).await?;
        let players = with_challenge(
            &sock,
            |c| a2s::players_request(c.unwrap_or(a2s::NO_CHALLENGE)),
            a2s::parse_players,
        )
        .await?;
        Ok::<_, String>((sock, info, players))
    })
    .await
    .map_err(|_| timed_out())??;
    // Rules are optional (many servers disable them): their own budget, and a failure only
    // leaves them unknown instead of failing the poll.
    let rules = tokio::time::timeout(
        timeout,
        with_challenge(
            &sock,
            |c| a2s::rules_request(c.unwrap_or(a2s::NO_CHALLENGE)),
            a2s::parse_rules,
        ),
    )
    .await;
    let rules = match rules {
        Ok(Ok(r)) => Some(r),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "A2S_RULES failed");
            None
        }
        Err(_) => None,
    };
    Ok(A2sResult {
        info,
        players,
        rules,
    })
}

pub async fn query_q3(addr: SocketAddr, timeout: Duration) -> Result<q3::Status, String> {
    tokio::time::timeout(timeout, async {
        let sock = socket_for(addr).await?;
        // The challenge is echoed back; a per-query value ties the reply to this request.
        let challenge = format!("gs{}", unique());
        sock.send(&q3::status_request(&challenge))
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let n = sock
                .recv(&mut buf)
                .await
                .map_err(|e| format!("recv: {e}"))?;
            let status = q3::parse_status(&buf[..n])?;
            // A late reply to an earlier query carries another challenge: wait for ours.
            match status.var("challenge") {
                Some(c) if c != challenge => continue,
                _ => return Ok(status),
            }
        }
    })
    .await
    .map_err(|_| format!("timeout after {} ms", timeout.as_millis()))?
}

/// A value no other query of this process uses.
fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed) ^ ((std::process::id() as u64) << 32)
}
