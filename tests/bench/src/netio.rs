//! The few system calls no crate wraps the way a load generator needs: batched UDP receive and
//! multi-destination send, CPU pinning and per-thread CPU time.

use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;

pub const BATCH: usize = 32;
pub const SLOT: usize = 1536;

const CONTROL: usize = 64;

/// Buffers for one `recvmmsg` call.
pub struct RecvBatch {
    buffers: Vec<[u8; SLOT]>,
    controls: Vec<[u8; CONTROL]>,
    lens: [usize; BATCH],
    addrs: [Option<SocketAddr>; BATCH],
    stamps: [Option<u64>; BATCH],
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self {
            buffers: vec![[0u8; SLOT]; BATCH],
            controls: vec![[0u8; CONTROL]; BATCH],
            lens: [0; BATCH],
            addrs: [None; BATCH],
            stamps: [None; BATCH],
        }
    }
}

/// Asks the kernel to stamp each datagram with its arrival time (CLOCK_REALTIME), so latency
/// does not include the generator's own queueing.
pub fn enable_receive_timestamps(socket: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid fd and a pointer to an int option value.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Now, on the clock the kernel stamps datagrams with, in nanoseconds.
pub fn realtime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl RecvBatch {
    /// Receives up to [`BATCH`] datagrams; `Ok(0)` when the socket has none.
    pub fn recv(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] = [MaybeUninit::uninit(); BATCH];
        let mut names: [MaybeUninit<libc::sockaddr_in>; BATCH] = [MaybeUninit::zeroed(); BATCH];
        let mut headers: [MaybeUninit<libc::mmsghdr>; BATCH] = [MaybeUninit::zeroed(); BATCH];
        for i in 0..BATCH {
            iovecs[i].write(libc::iovec {
                iov_base: self.buffers[i].as_mut_ptr().cast(),
                iov_len: SLOT,
            });
            // SAFETY: zeroed mmsghdr is valid; we only fill pointers to live buffers.
            let header = unsafe { headers[i].assume_init_mut() };
            header.msg_hdr.msg_name = names[i].as_mut_ptr().cast();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            header.msg_hdr.msg_iov = iovecs[i].as_mut_ptr();
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = self.controls[i].as_mut_ptr().cast();
            header.msg_hdr.msg_controllen = CONTROL;
        }
        // SAFETY: every header points at buffers that outlive the call.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr().cast(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for i in 0..n {
            // SAFETY: the kernel filled the first n headers and names.
            let (header, name) = unsafe { (headers[i].assume_init_ref(), names[i].assume_init()) };
            self.lens[i] = header.msg_len as usize;
            self.stamps[i] = receive_timestamp(&header.msg_hdr);
            self.addrs[i] = Some(SocketAddr::V4(SocketAddrV4::new(
                u32::from_be(name.sin_addr.s_addr).into(),
                u16::from_be(name.sin_port),
            )));
        }
        Ok(n)
    }

    /// Datagram `i` of the last receive and its source.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let addr = self.addrs.get(i).copied().flatten()?;
        Some((&self.buffers[i][..self.lens[i]], addr))
    }

    /// The kernel's arrival stamp of datagram `i` (realtime ns), if the socket asked for one.
    pub fn stamp(&self, i: usize) -> Option<u64> {
        self.stamps.get(i).copied().flatten()
    }
}

fn receive_timestamp(header: &libc::msghdr) -> Option<u64> {
    // SAFETY: the kernel wrote msg_controllen bytes of well-formed cmsgs into msg_control.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::timespec);
                return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}

/// Sends `datagrams` (payload, IPv4 destination) with `sendmmsg`, in batches of [`BATCH`];
/// returns how many the kernel took.
pub fn send_batch(socket: &impl AsRawFd, datagrams: &[(&[u8], SocketAddrV4)]) -> usize {
    let mut sent = 0;
    for chunk in datagrams.chunks(BATCH) {
        let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] = [MaybeUninit::uninit(); BATCH];
        let mut names: [MaybeUninit<libc::sockaddr_in>; BATCH] = [MaybeUninit::zeroed(); BATCH];
        let mut headers: [MaybeUninit<libc::mmsghdr>; BATCH] = [MaybeUninit::zeroed(); BATCH];
        for (i, (payload, dest)) in chunk.iter().enumerate() {
            iovecs[i].write(libc::iovec {
                iov_base: payload.as_ptr() as *mut _,
                iov_len: payload.len(),
            });
            names[i].write(sockaddr_in(*dest));
            // SAFETY: zeroed mmsghdr is valid; pointers refer to live data.
            let header = unsafe { headers[i].assume_init_mut() };
            header.msg_hdr.msg_name = names[i].as_mut_ptr().cast();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            header.msg_hdr.msg_iov = iovecs[i].as_mut_ptr();
            header.msg_hdr.msg_iovlen = 1;
        }
        let mut offset = 0;
        while offset < chunk.len() {
            // SAFETY: headers[offset..chunk.len()] are initialised above.
            let n = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    headers.as_mut_ptr().add(offset).cast(),
                    (chunk.len() - offset) as u32,
                    0,
                )
            };
            if n <= 0 {
                break; // full buffer or error: the rest of the batch is dropped and not counted
            }
            offset += n as usize;
        }
        sent += offset;
    }
    sent
}

fn sockaddr_in(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// Pins the calling thread to one CPU.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity(0) targets the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// CPU time the calling thread has used, in seconds.
pub fn thread_cpu_seconds() -> f64 {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn cpu_clock(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}
