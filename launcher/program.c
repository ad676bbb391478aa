/* program.c: find the program as execvp would, and see that the shim certainly holds it.
 *
 * find_program is pvdrun/pathsearch.py's search; surely_preloadable is
 * pvdrun/shim/preloadable.py's rule restricted to the case that needs neither a #! interpreter
 * nor a message: an ELF file with a PT_INTERP header, no Go section or Go build-ID note, run
 * without secure mode.  Whatever that rule would refuse, or anything this reading finds odd,
 * is 0 here, and the Python launcher then decides and says why (tests/test_launch_native.py
 * checks the two agree on every program of its corpus). */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "launcher.h"

#define DEFAULT_PATH "/bin:/usr/bin" /* Python's os.defpath */
#define GO_NOTE_WINDOW (1u << 16)

static int is_executable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int find_program(const char *name, const char *search_path, char *out, size_t outlen)
{
    if (strchr(name, '/')) {
        if (!is_executable_file(name) || strlen(name) >= outlen)
            return -1;
        strcpy(out, name);
        return 0;
    }
    const char *dir = search_path ? search_path : DEFAULT_PATH;
    for (;;) {
        const char *colon = strchr(dir, ':');
        size_t dlen = colon ? (size_t)(colon - dir) : strlen(dir);
        int n = dlen ? snprintf(out, outlen, "%.*s/%s", (int)dlen, dir, name)
                     : snprintf(out, outlen, "./%s", name);
        if (n > 0 && (size_t)n < outlen) {
            struct stat st;
            if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
                return 0; /* the first executable regular file wins */
        }
        if (!colon)
            return -1;
        dir = colon + 1;
    }
}

static int secure_exec(const char *path, const struct stat *st)
{
    if ((st->st_mode & S_ISUID) && st->st_uid != getuid())
        return 1;
    if ((st->st_mode & S_ISGID) && st->st_gid != getgid())
        return 1;
    if (getuid() != 0 && getxattr(path, "security.capability", NULL, 0) >= 0)
        return 1;
    return 0;
}

static int go_section(const char *name, size_t room)
{
    static const char *const go[] = {".go.buildinfo", ".note.go.buildid", ".gopclntab"};
    const char *nul = memchr(name, '\0', room);
    if (!nul)
        return -1; /* unterminated: preloadable.py reads such a name its own way */
    for (size_t i = 0; i < sizeof go / sizeof go[0]; i++)
        if (strcmp(name, go[i]) == 0)
            return 1;
    return 0;
}

/* One section header's offset, size and name index, read with memcpy: a file's e_shoff need not
 * be aligned for the header type, so the image is never read through a cast pointer. */
static void section(const unsigned char *d, uint64_t at, uint64_t *offset, uint64_t *size, uint64_t *name)
{
    uint64_t off, sz, nm;
    if (d[EI_CLASS] == ELFCLASS64) {
        Elf64_Shdr h;
        memcpy(&h, d + at, sizeof h);
        off = h.sh_offset, sz = h.sh_size, nm = h.sh_name;
    } else {
        Elf32_Shdr h;
        memcpy(&h, d + at, sizeof h);
        off = h.sh_offset, sz = h.sh_size, nm = h.sh_name;
    }
    if (offset)
        *offset = off;
    if (size)
        *size = sz;
    if (name)
        *name = nm;
}

int elf_surely_dynamic(const unsigned char *d, size_t len)
{
    if (len < 64 || memcmp(d, ELFMAG, SELFMAG) != 0 || d[EI_DATA] != ELFDATA2LSB)
        return 0;
    uint64_t phoff, shoff;
    uint16_t phentsize, phnum, shentsize, shnum, shstrndx;
    size_t ph_need, sh_need;
    if (d[EI_CLASS] == ELFCLASS64) {
        Elf64_Ehdr h;
        memcpy(&h, d, sizeof h);
        phoff = h.e_phoff, shoff = h.e_shoff, phentsize = h.e_phentsize, phnum = h.e_phnum;
        shentsize = h.e_shentsize, shnum = h.e_shnum, shstrndx = h.e_shstrndx;
        ph_need = sizeof(Elf64_Phdr), sh_need = sizeof(Elf64_Shdr);
    } else if (d[EI_CLASS] == ELFCLASS32) {
        Elf32_Ehdr h;
        memcpy(&h, d, sizeof h);
        phoff = h.e_phoff, shoff = h.e_shoff, phentsize = h.e_phentsize, phnum = h.e_phnum;
        shentsize = h.e_shentsize, shnum = h.e_shnum, shstrndx = h.e_shstrndx;
        ph_need = sizeof(Elf32_Phdr), sh_need = sizeof(Elf32_Shdr);
    } else {
        return 0;
    }
    if (phentsize < ph_need || phoff > len || (uint64_t)phnum * phentsize > len - phoff)
        return 0;
    int interp = 0;
    for (uint16_t i = 0; i < phnum; i++) {
        uint32_t type;
        memcpy(&type, d + phoff + (uint64_t)i * phentsize, sizeof type); /* p_type leads both */
        interp |= type == PT_INTERP;
    }
    if (!interp)
        return 0;
    /* The Go build-ID note's head: namesz=4, "Go\0\0".  Built at run time, so that these eight
     * bytes appear nowhere in this program's own file, which preloadable.py's scan of the first
     * 64 KiB would otherwise take for a Go note (pvdrun would then not be preloadable itself). */
    volatile unsigned char namesz = 4;
    const unsigned char go_note[8] = {namesz, 0, 0, 0, 'G', 'o', 0, 0};
    if (memmem(d, len < GO_NOTE_WINDOW ? len : GO_NOTE_WINDOW, go_note, sizeof go_note))
        return 0;
    if (!shoff || !shnum)
        return 1; /* no section headers: preloadable.py finds no Go section either */
    if (shstrndx >= shnum || shentsize < sh_need || shoff > len || (uint64_t)shnum * shentsize > len - shoff)
        return 0;
    uint64_t names_off, names_size, name;
    section(d, shoff + (uint64_t)shstrndx * shentsize, &names_off, &names_size, NULL);
    if (names_off > len || names_size > len - names_off)
        return 0;
    for (uint16_t i = 0; i < shnum; i++) {
        section(d, shoff + (uint64_t)i * shentsize, NULL, NULL, &name);
        if (name >= names_size)
            continue; /* preloadable.py reads no name there either */
        int go = go_section((const char *)d + names_off + name, names_size - name);
        if (go != 0)
            return 0;
    }
    return 1;
}

int surely_preloadable(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    int ok = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 64 && !secure_exec(path, &st)) {
        size_t len = (size_t)st.st_size;
        void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map != MAP_FAILED) {
            ok = elf_surely_dynamic(map, len);
            munmap(map, len);
        }
    }
    close(fd);
    return ok;
}
