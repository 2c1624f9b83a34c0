/*
 * The part of the libbpf 1.1 API that typedmaps uses, for cffi ABI mode.
 *
 * Read by typedmaps/_ffi.py only. Struct layouts are copied field by field
 * from libbpf 1.1's bpf.h / libbpf.h / btf.h and the kernel's linux/bpf.h;
 * every `*_opts` struct starts with `size_t sz`, which we fill with
 * ffi.sizeof(), so libbpf knows which fields we know about.
 *
 * Pointer parameters that carry map keys, values or paths are declared
 * `const char *` / `char *` instead of `void *`. The ABI is the same (all
 * data pointers are passed alike), and cffi then accepts a Python `bytes`
 * object directly for the input side, without a copy or ffi.from_buffer().
 *
 * Functions that a given libbpf might lack are looked up one by one by
 * _ffi.lib_has(); a missing symbol becomes NotSupportedError at the call.
 */

typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef int32_t __s32;

/* ---- bpf.h: low-level map syscall wrappers -------------------------------- */

struct bpf_map_create_opts {
    size_t sz;
    __u32 btf_fd;
    __u32 btf_key_type_id;
    __u32 btf_value_type_id;
    __u32 btf_vmlinux_value_type_id;
    __u32 inner_map_fd;
    __u32 map_flags;
    __u64 map_extra;
    __u32 numa_node;
    __u32 map_ifindex;
};

int bpf_map_create(int map_type, const char *map_name, __u32 key_size,
                   __u32 value_size, __u32 max_entries,
                   const struct bpf_map_create_opts *opts);

int bpf_map_update_elem(int fd, const char *key, const char *value, __u64 flags);
int bpf_map_lookup_elem(int fd, const char *key, char *value);
int bpf_map_lookup_elem_flags(int fd, const char *key, char *value, __u64 flags);
int bpf_map_lookup_and_delete_elem(int fd, const char *key, char *value);
int bpf_map_lookup_and_delete_elem_flags(int fd, const char *key, char *value,
                                         __u64 flags);
int bpf_map_delete_elem(int fd, const char *key);
int bpf_map_delete_elem_flags(int fd, const char *key, __u64 flags);
int bpf_map_get_next_key(int fd, const char *key, char *next_key);
int bpf_map_freeze(int fd);

struct bpf_map_batch_opts {
    size_t sz;
    __u64 elem_flags;
    __u64 flags;
};

int bpf_map_delete_batch(int fd, const char *keys, __u32 *count,
                         const struct bpf_map_batch_opts *opts);
int bpf_map_lookup_batch(int fd, char *in_batch, char *out_batch, char *keys,
                         char *values, __u32 *count,
                         const struct bpf_map_batch_opts *opts);
int bpf_map_lookup_and_delete_batch(int fd, char *in_batch, char *out_batch,
                                    char *keys, char *values, __u32 *count,
                                    const struct bpf_map_batch_opts *opts);
int bpf_map_update_batch(int fd, const char *keys, const char *values,
                         __u32 *count, const struct bpf_map_batch_opts *opts);

struct bpf_obj_get_opts {
    size_t sz;
    __u32 file_flags;
    __u32 _pad;          /* `size_t :0;` in bpf.h: pads the struct to 16 bytes */
};

int bpf_obj_pin(int fd, const char *pathname);
int bpf_obj_get(const char *pathname);
int bpf_obj_get_opts(const char *pathname, const struct bpf_obj_get_opts *opts);

int bpf_map_get_next_id(__u32 start_id, __u32 *next_id);
int bpf_prog_get_next_id(__u32 start_id, __u32 *next_id);

struct bpf_get_fd_by_id_opts {
    size_t sz;
    __u32 open_flags;
    __u32 _pad;          /* `size_t :0;` in bpf.h */
};

int bpf_map_get_fd_by_id(__u32 id);
int bpf_map_get_fd_by_id_opts(__u32 id, const struct bpf_get_fd_by_id_opts *opts);
int bpf_btf_get_fd_by_id(__u32 id);
int bpf_obj_get_info_by_fd(int bpf_fd, void *info, __u32 *info_len);

struct bpf_test_run_opts {
    size_t sz;
    const char *data_in;
    char *data_out;
    __u32 data_size_in;
    __u32 data_size_out;
    const char *ctx_in;
    char *ctx_out;
    __u32 ctx_size_in;
    __u32 ctx_size_out;
    __u32 retval;
    int repeat;
    __u32 duration;
    __u32 flags;
    __u32 cpu;
    __u32 batch_size;
};

int bpf_prog_test_run_opts(int prog_fd, struct bpf_test_run_opts *opts);

/* ---- linux/bpf.h: object info ------------------------------------------- */

struct bpf_map_info {
    __u32 type;
    __u32 id;
    __u32 key_size;
    __u32 value_size;
    __u32 max_entries;
    __u32 map_flags;
    char  name[16];
    __u32 ifindex;
    __u32 btf_vmlinux_value_type_id;
    __u64 netns_dev;
    __u64 netns_ino;
    __u32 btf_id;
    __u32 btf_key_type_id;
    __u32 btf_value_type_id;
    __u32 _pad0;
    __u64 map_extra;
};

struct bpf_btf_info {
    __u64 btf;
    __u32 btf_size;
    __u32 id;
    __u64 name;
    __u32 name_len;
    __u32 kernel_btf;
};

/* ---- libbpf.h: logging, objects, maps, programs, links ------------------ */

typedef int (*libbpf_print_fn_t)(int level, const char *fmt, void *ap);
libbpf_print_fn_t libbpf_set_print(libbpf_print_fn_t fn);

int libbpf_num_possible_cpus(void);
int libbpf_strerror(int err, char *buf, size_t size);

struct bpf_object;
struct bpf_map;
struct bpf_program;
struct bpf_link;
struct btf;
struct btf_ext;

struct bpf_object_open_opts {
    size_t sz;
    const char *object_name;
    bool relaxed_maps;
    const char *pin_root_path;
    __u32 _stub_attach_prog_fd;
    const char *kconfig;
    const char *btf_custom_path;
    char *kernel_log_buf;
    size_t kernel_log_size;
    __u32 kernel_log_level;
    __u32 _pad;          /* `size_t :0;` in libbpf.h */
};

struct bpf_object *bpf_object__open_file(const char *path,
                                         const struct bpf_object_open_opts *opts);
struct bpf_object *bpf_object__open_mem(const char *obj_buf, size_t obj_buf_sz,
                                        const struct bpf_object_open_opts *opts);
int bpf_object__load(struct bpf_object *obj);
void bpf_object__close(struct bpf_object *obj);
const char *bpf_object__name(const struct bpf_object *obj);
struct btf *bpf_object__btf(const struct bpf_object *obj);
struct bpf_map *bpf_object__next_map(const struct bpf_object *obj,
                                     const struct bpf_map *map);
struct bpf_map *bpf_object__find_map_by_name(const struct bpf_object *obj,
                                             const char *name);
struct bpf_program *bpf_object__next_program(const struct bpf_object *obj,
                                             struct bpf_program *prog);

const char *bpf_map__name(const struct bpf_map *map);
int bpf_map__fd(const struct bpf_map *map);
int bpf_map__reuse_fd(struct bpf_map *map, int fd);
int bpf_map__type(const struct bpf_map *map);
int bpf_map__set_type(struct bpf_map *map, int type);
__u32 bpf_map__max_entries(const struct bpf_map *map);
int bpf_map__set_max_entries(struct bpf_map *map, __u32 max_entries);
__u32 bpf_map__map_flags(const struct bpf_map *map);
int bpf_map__set_map_flags(struct bpf_map *map, __u32 flags);
__u32 bpf_map__key_size(const struct bpf_map *map);
int bpf_map__set_key_size(struct bpf_map *map, __u32 size);
__u32 bpf_map__value_size(const struct bpf_map *map);
int bpf_map__set_value_size(struct bpf_map *map, __u32 size);
__u32 bpf_map__btf_key_type_id(const struct bpf_map *map);
__u32 bpf_map__btf_value_type_id(const struct bpf_map *map);
int bpf_map__set_autocreate(struct bpf_map *map, bool autocreate);
bool bpf_map__autocreate(const struct bpf_map *map);
int bpf_map__set_initial_value(struct bpf_map *map, const char *data, size_t size);
const char *bpf_map__initial_value(struct bpf_map *map, size_t *psize);
int bpf_map__set_pin_path(struct bpf_map *map, const char *path);
const char *bpf_map__pin_path(const struct bpf_map *map);
bool bpf_map__is_pinned(const struct bpf_map *map);
int bpf_map__pin(struct bpf_map *map, const char *path);
int bpf_map__unpin(struct bpf_map *map, const char *path);

const char *bpf_program__name(const struct bpf_program *prog);
const char *bpf_program__section_name(const struct bpf_program *prog);
bool bpf_program__autoload(const struct bpf_program *prog);
int bpf_program__set_autoload(struct bpf_program *prog, bool autoload);
int bpf_program__fd(const struct bpf_program *prog);
int bpf_program__type(const struct bpf_program *prog);
struct bpf_link *bpf_program__attach(const struct bpf_program *prog);

int bpf_link__fd(const struct bpf_link *link);
int bpf_link__detach(struct bpf_link *link);
int bpf_link__destroy(struct bpf_link *link);

/* ---- btf.h ----------------------------------------------------------------
 * Only the non-inline entry points: btf_kind(), btf_members() and friends are
 * static inline in btf.h and do not exist in the shared library, so
 * typedmaps.btf decodes `struct btf_type` and what follows it in Python.
 */

struct btf_type {
    __u32 name_off;
    __u32 info;
    __u32 size_or_type;   /* a union of `size` and `type` in btf.h */
};

struct btf *btf__parse(const char *path, struct btf_ext **btf_ext);
struct btf *btf__parse_elf(const char *path, struct btf_ext **btf_ext);
struct btf *btf__new(const char *data, __u32 size);
struct btf *btf__load_from_kernel_by_id(__u32 id);
struct btf *btf__load_vmlinux_btf(void);
void btf__free(struct btf *btf);
__u32 btf__type_cnt(const struct btf *btf);
const struct btf_type *btf__type_by_id(const struct btf *btf, __u32 id);
const char *btf__name_by_offset(const struct btf *btf, __u32 offset);
const char *btf__raw_data(const struct btf *btf, __u32 *size);
int btf__fd(const struct btf *btf);

/* ---- program.py: attaching programs, links, pins, perf events ----------
 * Owned by the program/link code. Layouts from libbpf 1.1.2's bpf.h and
 * libbpf.h and Debian 12's linux/bpf.h, linux/perf_event.h; `size_t :0;`
 * tails are written as explicit padding so that sizeof matches C.
 */

enum bpf_tc_attach_point {
    BPF_TC_INGRESS = 1,
    BPF_TC_EGRESS  = 2,
    BPF_TC_CUSTOM  = 4,
};

struct bpf_tc_hook {
    size_t sz;
    int ifindex;
    enum bpf_tc_attach_point attach_point;
    __u32 parent;
    __u32 _pad;          /* `size_t :0;` */
};

struct bpf_tc_opts {
    size_t sz;
    int prog_fd;
    __u32 flags;
    __u32 prog_id;
    __u32 handle;
    __u32 priority;
    __u32 _pad;          /* `size_t :0;` */
};

int bpf_tc_hook_create(struct bpf_tc_hook *hook);
int bpf_tc_hook_destroy(struct bpf_tc_hook *hook);
int bpf_tc_attach(const struct bpf_tc_hook *hook, struct bpf_tc_opts *opts);
int bpf_tc_detach(const struct bpf_tc_hook *hook, const struct bpf_tc_opts *opts);
int bpf_tc_query(const struct bpf_tc_hook *hook, struct bpf_tc_opts *opts);

struct bpf_xdp_query_opts {
    size_t sz;
    __u32 prog_id;
    __u32 drv_prog_id;
    __u32 hw_prog_id;
    __u32 skb_prog_id;
    __u8 attach_mode;
    __u8 _pad[7];        /* `size_t :0;` */
};

int bpf_xdp_query(int ifindex, int flags, struct bpf_xdp_query_opts *opts);

struct bpf_link_create_opts {
    size_t sz;
    __u32 flags;
    void *iter_info;     /* union bpf_iter_link_info * */
    __u32 iter_info_len;
    __u32 target_btf_id;
    union {
        struct {
            __u64 bpf_cookie;
        } perf_event;
        struct {
            __u32 flags;
            __u32 cnt;
            const char **syms;
            const unsigned long *addrs;
            const __u64 *cookies;
        } kprobe_multi;
        struct {
            __u64 cookie;
        } tracing;
    };
};

int bpf_link_create(int prog_fd, int target_fd, int attach_type,
                    const struct bpf_link_create_opts *opts);
int bpf_link_detach(int link_fd);
int bpf_link_get_fd_by_id(__u32 id);
int bpf_prog_get_fd_by_id(__u32 id);
int bpf_raw_tracepoint_open(const char *name, int prog_fd);

struct bpf_uprobe_opts {
    size_t sz;
    size_t ref_ctr_offset;
    __u64 bpf_cookie;
    bool retprobe;
    const char *func_name;
};

struct bpf_kprobe_opts {
    size_t sz;
    __u64 bpf_cookie;
    size_t offset;
    bool retprobe;
    __u8 _pad[7];        /* `size_t :0;` */
};

struct bpf_link *bpf_program__attach_uprobe_opts(const struct bpf_program *prog,
                                                 int pid, const char *binary_path,
                                                 size_t func_offset,
                                                 const struct bpf_uprobe_opts *opts);
struct bpf_link *bpf_program__attach_kprobe_opts(const struct bpf_program *prog,
                                                 const char *func_name,
                                                 const struct bpf_kprobe_opts *opts);
int bpf_program__expected_attach_type(const struct bpf_program *prog);
int libbpf_probe_bpf_prog_type(int prog_type, const void *opts);

struct bpf_prog_info {
    __u32 type;
    __u32 id;
    __u8  tag[8];
    __u32 jited_prog_len;
    __u32 xlated_prog_len;
    __u64 jited_prog_insns;
    __u64 xlated_prog_insns;
    __u64 load_time;
    __u32 created_by_uid;
    __u32 nr_map_ids;
    __u64 map_ids;
    char  name[16];
    __u32 ifindex;
    __u32 gpl_compatible;   /* `gpl_compatible:1, :31` */
    __u64 netns_dev;
    __u64 netns_ino;
    __u32 nr_jited_ksyms;
    __u32 nr_jited_func_lens;
    __u64 jited_ksyms;
    __u64 jited_func_lens;
    __u32 btf_id;
    __u32 func_info_rec_size;
    __u64 func_info;
    __u32 nr_func_info;
    __u32 nr_line_info;
    __u64 line_info;
    __u64 jited_line_info;
    __u32 nr_jited_line_info;
    __u32 line_info_rec_size;
    __u32 jited_line_info_rec_size;
    __u32 nr_prog_tags;
    __u64 prog_tags;
    __u64 run_time_ns;
    __u64 run_cnt;
    __u64 recursion_misses;
    __u32 verified_insns;
    __u32 attach_btf_obj_id;
    __u32 attach_btf_id;
    __u32 _pad;             /* `__u32 :32;` */
};

/* The per-type union after prog_id is kept as raw words: the kernel fills
 * as much of it as it has, and typedmaps reads the fields it names. */
struct bpf_link_info {
    __u32 type;
    __u32 id;
    __u32 prog_id;
    __u32 _pad;
    __u64 extra[4];       /* the union: 32 bytes in these headers */
};

/* linux/perf_event.h (PERF_ATTR_SIZE_VER7); the bitfield word is `flags`. */
struct perf_event_attr {
    __u32 type;
    __u32 size;
    __u64 config;
    __u64 sample_period_or_freq;
    __u64 sample_type;
    __u64 read_format;
    __u64 flags;            /* disabled:1, inherit:1, ..., freq:1 (bit 10), ... */
    __u32 wakeup_events;
    __u32 bp_type;
    __u64 config1;
    __u64 config2;
    __u64 branch_sample_type;
    __u64 sample_regs_user;
    __u32 sample_stack_user;
    __s32 clockid;
    __u64 sample_regs_intr;
    __u32 aux_watermark;
    __u16 sample_max_stack;
    __u16 __reserved_2;
    __u32 aux_sample_size;
    __u32 __reserved_3;
    __u64 sig_data;
};

/* libc: perf_event_open has no wrapper; setns for typedmaps.testing. */
long syscall(long number, ...);
int setns(int fd, int nstype);

/* ---- libc: formatting libbpf's va_list log lines ------------------------ */

int vsnprintf(char *str, size_t size, const char *format, void *ap);

/* ---- libbpf.h: version (typedmaps --version) ------------------------------ */

const char *libbpf_version_string(void);

/* ---- program data: maps of maps (libbpf.h) -------------------------------- */

/* The inner-map template libbpf made from a BTF __array(values, ...)
 * declaration; NULL for other maps, and freed by libbpf at load. */
struct bpf_map *bpf_map__inner_map(struct bpf_map *map);

/* ---- libc: the file system a pin lives on (safety: unpin removes only BPF pins) ----
 * struct statfs is declared as bytes: the first field, f_type (__fsword_t, a
 * long on Linux), is the only one read; 512 bytes hold the struct on every arch.
 */

int statfs(const char *path, char *buf);
