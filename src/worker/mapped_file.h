// MappedFile: a whole file mapped read-only into memory, owned by a move-only handle.
//
// Checkpoints are gigabytes; mapping them lets a reader hand out pointers into the file and lets
// the kernel page data in (and drop it again) as tensors are converted, so nothing is copied until
// a tensor is read. The mapping is private and read-only. An empty file is "mapped" without mmap
// (mmap of length 0 fails): data() is nullptr and size() is 0.
// Moving the handle does not move the mapping, so pointers into data() stay valid until the handle
// that owns the mapping is destroyed. If another process truncates the file while it is mapped,
// touching the lost pages raises SIGBUS; checkpoints are not expected to change while loaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace moe {

class MappedFile {
 public:
  MappedFile() = default;
  // Maps `path`. Throws moe::Error naming the path when it is missing, unreadable, not a regular
  // file, or cannot be mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release() noexcept;

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Tells the kernel this process is done with the whole pages inside [data, data + bytes) of a
// read-only file mapping (madvise MADV_DONTNEED): they leave the resident set and are read from the
// file again if touched. Loaders call it after converting a tensor, so the peak resident memory of
// a load is the converted model plus about one tensor, not the model plus the whole mapped file.
// A no-op for ranges smaller than a page or outside any mapping's pages.
void dropMappedPages(const void* data, size_t bytes) noexcept;

}  // namespace moe
