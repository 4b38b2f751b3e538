//! The pause image: what holds an `awsvpc` task's network namespace. Nothing can be
//! assumed pullable (air-gapped hosts, fresh machines without busybox), so the agent
//! carries its own: a static ELF of about 130 bytes that sleeps until killed, wrapped in
//! a one-file root filesystem tar built in memory and imported into Docker
//! (`POST /images/create?fromSrc=-`). Operators may name another image instead
//! (`--pause-image`).
//!
//! The programs are hand-assembled: one ELF header, one `PT_LOAD` program header mapping
//! the whole file read+execute, then a loop around a syscall that blocks until a signal
//! arrives (`pause` on x86-64; arm64 has no `pause`, so `ppoll` with no descriptors and
//! no timeout). PID 1 in a container ignores SIGTERM without a handler, so Docker's stop
//! ends with SIGKILL, which is what a pause container wants.

/// The built-in image's repository.
pub const REPOSITORY: &str = "stevedore/pause";
/// The built-in image's reference (tagged with the agent version, so an upgrade that
/// changes the program imports a fresh image).
pub const IMAGE: &str = concat!("stevedore/pause:", env!("CARGO_PKG_VERSION"));
/// The program's path inside the image.
pub const PROGRAM_PATH: &str = "/pause";

/// Where the program is loaded (the conventional base of static executables).
const BASE: u64 = 0x40_0000;
const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;

/// Why no pause program can be built here.
#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    /// No hand-assembled program exists for this CPU.
    #[error("no built-in pause image for the {0} architecture; name one with --pause-image (config file: STEVEDORE_PAUSE_IMAGE)")]
    UnsupportedArchitecture(String),
}

/// x86-64: `mov eax, 34 (pause); syscall; jmp back to mov`.
const CODE_X86_64: [u8; 9] = [0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7];

/// arm64: `mov x0..x3, #0; mov x8, #73 (ppoll); svc #0; b back to the first mov`.
const CODE_AARCH64: [u32; 7] = [
    0xd280_0000,
    0xd280_0001,
    0xd280_0002,
    0xd280_0003,
    0xd280_0928,
    0xd400_0001,
    0x17ff_fffa,
];

/// `EM_X86_64`.
pub const EM_X86_64: u16 = 62;
/// `EM_AARCH64`.
pub const EM_AARCH64: u16 = 183;

/// The pause program for `arch` (as `std::env::consts::ARCH` names it).
pub fn compute_program(arch: &str) -> Result<Vec<u8>, PauseError> {
    match arch {
        "x86_64" => Ok(compute_elf(EM_X86_64, &CODE_X86_64)),
        "aarch64" => {
            let code: Vec<u8> = CODE_AARCH64.iter().flat_map(|i| i.to_le_bytes()).collect();
            Ok(compute_elf(EM_AARCH64, &code))
        }
        other => Err(PauseError::UnsupportedArchitecture(other.to_owned())),
    }
}

/// A 64-bit little-endian static executable whose code follows the headers directly.
fn compute_elf(machine: u16, code: &[u8]) -> Vec<u8> {
    let headers = EHDR_SIZE + PHDR_SIZE;
    let total = (headers + code.len()) as u64;
    let entry = BASE + headers as u64;
    let mut out = Vec::with_capacity(headers + code.len());
    // e_ident: magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, System V ABI, padding.
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&entry.to_le_bytes());
    out.extend_from_slice(&(EHDR_SIZE as u64).to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
    out.extend_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    out.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
                                    // The one program header: PT_LOAD, R+X, the whole file at BASE.
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&5u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    out.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    out.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    out.extend_from_slice(&total.to_le_bytes()); // p_filesz
    out.extend_from_slice(&total.to_le_bytes()); // p_memsz
    out.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    out.extend_from_slice(code);
    out
}

/// A tar archive (POSIX ustar) holding one executable file at `path`.
pub fn compute_rootfs_tar(path: &str, program: &[u8]) -> Vec<u8> {
    let name = path.trim_start_matches('/');
    let mut header = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, field: &[u8]| {
        h[at..at + field.len()].copy_from_slice(field);
    };
    put(&mut header, 0, name.as_bytes());
    put(&mut header, 100, b"0000755\0");
    put(&mut header, 108, b"0000000\0");
    put(&mut header, 116, b"0000000\0");
    put(
        &mut header,
        124,
        format!("{:011o}\0", program.len()).as_bytes(),
    );
    put(&mut header, 136, b"00000000000\0");
    put(&mut header, 148, b"        ");
    header[156] = b'0';
    put(&mut header, 257, b"ustar\0");
    put(&mut header, 263, b"00");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    put(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(program);
    out.resize(out.len().next_multiple_of(512), 0);
    // Two zero blocks end the archive.
    out.resize(out.len() + 1024, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
    }

    fn check_structure(elf: &[u8], machine: u16) {
        assert_eq!(&elf[..4], b"\x7fELF");
        assert_eq!(elf[4], 2, "64-bit");
        assert_eq!(elf[5], 1, "little-endian");
        assert_eq!(u16_at(elf, 16), 2, "ET_EXEC");
        assert_eq!(u16_at(elf, 18), machine);
        assert_eq!(u64_at(elf, 32), 64, "program headers follow the ELF header");
        assert_eq!(u16_at(elf, 52), 64);
        assert_eq!(u16_at(elf, 54), 56);
        assert_eq!(u16_at(elf, 56), 1);
        let ph = 64;
        assert_eq!(u32_at(elf, ph), 1, "PT_LOAD");
        assert_eq!(u32_at(elf, ph + 4), 5, "R+X");
        assert_eq!(u64_at(elf, ph + 8), 0);
        let vaddr = u64_at(elf, ph + 16);
        assert_eq!(
            u64_at(elf, ph + 32),
            elf.len() as u64,
            "the whole file is loaded"
        );
        assert_eq!(u64_at(elf, ph + 40), elf.len() as u64);
        assert_eq!(vaddr % 0x1000, 0, "segment aligned to its page");
        let entry = u64_at(elf, 24);
        assert_eq!(entry, vaddr + 120, "entry is the first code byte");
        assert!(elf.len() < 160, "tiny: {} bytes", elf.len());
    }

    #[test]
    fn the_x86_64_program_is_a_minimal_static_elf_looping_on_pause() {
        let elf = compute_program("x86_64").expect("x86_64");
        check_structure(&elf, EM_X86_64);
        assert_eq!(elf.len(), 129);
        let code = &elf[120..];
        assert_eq!(&code[..5], &[0xb8, 34, 0, 0, 0], "mov eax, SYS_pause");
        assert_eq!(&code[5..7], &[0x0f, 0x05], "syscall");
        // jmp rel8 back to the start of the code: the target is 0.
        let after = 9i32;
        assert_eq!(after + i32::from(code[8] as i8), 0);
    }

    #[test]
    fn the_aarch64_program_loops_on_ppoll() {
        let elf = compute_program("aarch64").expect("aarch64");
        check_structure(&elf, EM_AARCH64);
        let last = u32_at(&elf, elf.len() - 4);
        // b imm26: a branch back over the six instructions before it.
        assert_eq!(last >> 26, 0b000101);
        assert_eq!(((last & 0x03ff_ffff) as i32) << 6 >> 6, -6);
        assert_eq!(
            u32_at(&elf, 120 + 16),
            0xd280_0000 | (73 << 5) | 8,
            "x8 = SYS_ppoll"
        );
    }

    #[test]
    fn other_architectures_name_the_option() {
        let err = compute_program("riscv64").expect_err("none");
        assert!(err.to_string().contains("--pause-image"));
    }

    #[test]
    fn the_rootfs_is_a_valid_ustar_with_one_executable() {
        let program = compute_program("x86_64").expect("x86_64");
        let tar = compute_rootfs_tar(PROGRAM_PATH, &program);
        assert_eq!(tar.len() % 512, 0);
        assert_eq!(tar.len(), 512 + 512 + 1024);
        assert_eq!(&tar[..5], b"pause");
        assert_eq!(&tar[100..107], b"0000755");
        assert_eq!(&tar[257..262], b"ustar");
        let size = u64::from_str_radix(std::str::from_utf8(&tar[124..135]).expect("ascii"), 8)
            .expect("octal");
        assert_eq!(size, program.len() as u64);
        let mut sum: u32 = tar[..512].iter().map(|b| u32::from(*b)).sum();
        sum -= tar[148..156].iter().map(|b| u32::from(*b)).sum::<u32>();
        sum += 8 * u32::from(b' ');
        let stored = u32::from_str_radix(std::str::from_utf8(&tar[148..154]).expect("ascii"), 8)
            .expect("octal");
        assert_eq!(stored, sum);
        assert_eq!(&tar[512..512 + program.len()], &program[..]);
        assert!(tar[1024..].iter().all(|b| *b == 0));
    }
}
