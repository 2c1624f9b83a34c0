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

/* ---- libc: formatting libbpf's va_list log lines ------------------------ */

int vsnprintf(char *str, size_t size, const char *format, void *ap);

/* ---- libbpf.h: version (typedmaps --version) ------------------------------ */

const char *libbpf_version_string(void);
