// .npy files and .npz archives for the tvmext application runner, with no library
// beyond the C++ standard library.
//
// Reading covers what np.save and np.savez write: .npy format versions 1 to 3,
// little-endian or byte-order-free dtypes, C order; .npz as a zip archive of stored
// (uncompressed) .npy entries, zip64 records included (NumPy writes its entries with
// zip64 extra fields). A compressed entry (np.savez_compressed) is refused with a
// message saying so. Writing produces .npy version 1.0 entries in a stored .npz that
// np.load reads; the archive is written to a temporary file and renamed, so a failure
// leaves no partial file.
#pragma once

#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace npy {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Where an array's bytes live: a .npy file, or one stored entry of an .npz archive.
struct Entry {
  std::string where;  // for messages: "x.npy" or "in.npz[x]"
  std::string file;
  uint64_t offset = 0;  // of the .npy header in `file`
  uint64_t size = 0;    // bytes of .npy content (header and data)
};

// An array's .npy header.
struct Header {
  std::string descr;  // NumPy's dtype string, e.g. "<f4", "|b1"
  std::vector<int64_t> shape;
  uint64_t data_offset = 0;  // from the start of the .npy content
};

using File = std::unique_ptr<FILE, int (*)(FILE*)>;

inline File Open(const std::string& path, const char* mode) {
  File f(std::fopen(path.c_str(), mode), &std::fclose);
  if (!f) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  return f;
}

inline void ReadAt(FILE* f, uint64_t offset, void* dst, size_t n, const std::string& where) {
  if (fseeko(f, static_cast<off_t>(offset), SEEK_SET) != 0 || std::fread(dst, 1, n, f) != n) {
    throw Error("'" + where + "' is truncated (reading " + std::to_string(n) + " bytes at " +
                std::to_string(offset) + ")");
  }
}

inline uint64_t Little(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

inline uint64_t FileSize(FILE* f, const std::string& path) {
  if (fseeko(f, 0, SEEK_END) != 0) throw Error("cannot seek in '" + path + "'");
  return static_cast<uint64_t>(ftello(f));
}

// The value of key `key` in the header dict, as its source text.
inline std::string DictValue(const std::string& dict, const std::string& key,
                             const std::string& where) {
  size_t k = dict.find("'" + key + "'");
  if (k == std::string::npos) throw Error("'" + where + "': .npy header lacks '" + key + "'");
  size_t colon = dict.find(':', k);
  size_t start = dict.find_first_not_of(" ", colon + 1);
  if (colon == std::string::npos || start == std::string::npos) {
    throw Error("'" + where + "': malformed .npy header: " + dict);
  }
  char open = dict[start];
  size_t end;
  if (open == '\'' || open == '"') {
    end = dict.find(open, start + 1);
    if (end == std::string::npos) throw Error("'" + where + "': malformed .npy header: " + dict);
    return dict.substr(start + 1, end - start - 1);
  }
  if (open == '(' || open == '[') {
    end = dict.find(open == '(' ? ')' : ']', start);
    if (end == std::string::npos) throw Error("'" + where + "': malformed .npy header: " + dict);
    return dict.substr(start, end - start + 1);
  }
  end = dict.find_first_of(",}", start);
  return dict.substr(start, end - start);
}

inline Header ReadHeader(const Entry& entry) {
  File f = Open(entry.file, "rb");
  unsigned char fixed[12];
  if (entry.size < 10) throw Error("'" + entry.where + "' is not a .npy array (too short)");
  ReadAt(f.get(), entry.offset, fixed, entry.size >= 12 ? 12 : 10, entry.where);
  if (std::memcmp(fixed, "\x93NUMPY", 6) != 0) {
    throw Error("'" + entry.where + "' is not a .npy array (no \\x93NUMPY magic)");
  }
  int major = fixed[6];
  if (major < 1 || major > 3) {
    throw Error("'" + entry.where + "': unsupported .npy format version " +
                std::to_string(major));
  }
  uint64_t prefix = major == 1 ? 10 : 12;
  uint64_t length = Little(fixed + 8, major == 1 ? 2 : 4);
  if (prefix + length > entry.size) throw Error("'" + entry.where + "': truncated .npy header");
  std::string dict(length, '\0');
  ReadAt(f.get(), entry.offset + prefix, dict.data(), length, entry.where);
  Header header;
  header.data_offset = prefix + length;
  if (dict.find("'descr': [") != std::string::npos) {
    throw Error("'" + entry.where + "' holds a structured dtype; expected a plain numeric array");
  }
  header.descr = DictValue(dict, "descr", entry.where);
  if (DictValue(dict, "fortran_order", entry.where) != "False") {
    throw Error("'" + entry.where +
                "' is in Fortran order; save a C-ordered array (np.ascontiguousarray)");
  }
  std::string shape = DictValue(dict, "shape", entry.where);
  for (size_t i = 1; i + 1 < shape.size();) {
    while (i + 1 < shape.size() && !std::isdigit(static_cast<unsigned char>(shape[i]))) ++i;
    if (i + 1 >= shape.size()) break;
    size_t used = 0;
    header.shape.push_back(std::stoll(shape.substr(i), &used));
    i += used;
  }
  return header;
}

// Reads the array's `nbytes` bytes of data into `dst`.
inline void ReadData(const Entry& entry, const Header& header, void* dst, uint64_t nbytes) {
  if (header.data_offset + nbytes > entry.size) {
    throw Error("'" + entry.where + "' is truncated: its header promises " +
                std::to_string(nbytes) + " bytes of data, it holds " +
                std::to_string(entry.size - header.data_offset));
  }
  File f = Open(entry.file, "rb");
  ReadAt(f.get(), entry.offset + header.data_offset, dst, nbytes, entry.where);
}

inline Entry NpyFile(const std::string& path) {
  File f = Open(path, "rb");
  return Entry{path, path, 0, FileSize(f.get(), path)};
}

// The .npy entries of an .npz archive, by array name (the entry name without ".npy").
inline std::map<std::string, Entry> ReadNpz(const std::string& path) {
  File f = Open(path, "rb");
  uint64_t size = FileSize(f.get(), path);
  // The end-of-central-directory record sits in the last 22 + 65535 bytes.
  uint64_t tail_size = size < 22 + 65535 ? size : 22 + 65535;
  std::vector<unsigned char> tail(tail_size);
  ReadAt(f.get(), size - tail_size, tail.data(), tail_size, path);
  int64_t eocd = -1;
  for (int64_t i = static_cast<int64_t>(tail_size) - 22; i >= 0; --i) {
    if (Little(&tail[i], 4) == 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw Error("'" + path + "' is not an .npz archive (no zip directory)");
  uint64_t count = Little(&tail[eocd + 10], 2);
  uint64_t dir_offset = Little(&tail[eocd + 16], 4);
  if (count == 0xFFFF || dir_offset == 0xFFFFFFFF) {  // zip64: the real values are elsewhere
    uint64_t locator = size - tail_size + static_cast<uint64_t>(eocd) - 20;
    unsigned char loc[20];
    ReadAt(f.get(), locator, loc, 20, path);
    if (Little(loc, 4) != 0x07064b50) throw Error("'" + path + "': broken zip64 directory");
    unsigned char rec[56];
    ReadAt(f.get(), Little(loc + 8, 8), rec, 56, path);
    if (Little(rec, 4) != 0x06064b50) throw Error("'" + path + "': broken zip64 directory");
    count = Little(rec + 32, 8);
    dir_offset = Little(rec + 48, 8);
  }
  std::map<std::string, Entry> entries;
  uint64_t at = dir_offset;
  for (uint64_t n = 0; n < count; ++n) {
    unsigned char h[46];
    ReadAt(f.get(), at, h, 46, path);
    if (Little(h, 4) != 0x02014b50) throw Error("'" + path + "': broken zip directory");
    uint64_t flags = Little(h + 8, 2), method = Little(h + 10, 2);
    uint64_t compressed = Little(h + 20, 4), uncompressed = Little(h + 24, 4);
    uint64_t name_len = Little(h + 28, 2), extra_len = Little(h + 30, 2);
    uint64_t comment_len = Little(h + 32, 2), local = Little(h + 42, 4);
    std::string name(name_len, '\0');
    ReadAt(f.get(), at + 46, name.data(), name_len, path);
    std::vector<unsigned char> extra(extra_len);
    ReadAt(f.get(), at + 46 + name_len, extra.data(), extra_len, path);
    for (uint64_t e = 0; e + 4 <= extra_len;) {  // zip64 sizes and offset, when they overflow
      uint64_t id = Little(&extra[e], 2), len = Little(&extra[e + 2], 2);
      if (e + 4 + len > extra_len) throw Error("'" + path + "': broken zip extra field");
      if (id == 0x0001) {
        uint64_t p = e + 4;
        for (uint64_t* field : {&uncompressed, &compressed, &local}) {
          if (*field == 0xFFFFFFFF && p + 8 <= e + 4 + len) {
            *field = Little(&extra[p], 8);
            p += 8;
          }
        }
      }
      e += 4 + len;
    }
    at += 46 + name_len + extra_len + comment_len;
    std::string key = name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0
                          ? name.substr(0, name.size() - 4)
                          : name;
    std::string where = path + "[" + key + "]";
    if (method != 0) {
      throw Error("'" + where + "' is compressed (zip method " + std::to_string(method) +
                  "); only stored entries are read: write the archive with np.savez, not "
                  "np.savez_compressed");
    }
    if (flags & 1) throw Error("'" + where + "' is encrypted");
    unsigned char lh[30];
    ReadAt(f.get(), local, lh, 30, path);
    if (Little(lh, 4) != 0x04034b50) throw Error("'" + path + "': broken zip entry " + name);
    uint64_t data = local + 30 + Little(lh + 26, 2) + Little(lh + 28, 2);
    entries[key] = Entry{where, path, data, uncompressed};
  }
  return entries;
}

// One array to write: NumPy dtype string, shape and C-ordered bytes.
struct Member {
  std::string name;
  std::string descr;
  std::vector<int64_t> shape;
  const void* data;
  uint64_t nbytes;
};

inline uint32_t Crc32(uint32_t crc, const void* data, uint64_t n) {
  static uint32_t table[256] = {0};
  if (table[1] == 0) {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
  }
  const unsigned char* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (uint64_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

// A version 1.0 .npy header, padded so that the data starts on a 64-byte boundary.
inline std::string NpyHeader(const Member& m) {
  std::string shape = "(";
  for (size_t i = 0; i < m.shape.size(); ++i) {
    shape += (i ? ", " : "") + std::to_string(m.shape[i]);
  }
  shape += m.shape.size() == 1 ? ",)" : ")";  // Python's one-element tuple
  std::string dict = "{'descr': '" + m.descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string header = "\x93NUMPY\x01";
  header += '\0';
  header += static_cast<char>(dict.size() & 0xFF);
  header += static_cast<char>(dict.size() >> 8);
  return header + dict;
}

inline void PutLittle(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

// Writes `members` as an .npz archive of stored entries "<name>.npy" at `path`.
inline void WriteNpz(const std::string& path, const std::vector<Member>& members) {
  std::string tmp = path + ".tmp-" + std::to_string(getpid());
  std::string directory;
  uint64_t offset = 0;
  try {
    File f = Open(tmp, "wb");
    auto put = [&](const void* data, uint64_t n) {
      if (std::fwrite(data, 1, n, f.get()) != n) throw Error("cannot write '" + path + "'");
      offset += n;
    };
    for (const Member& m : members) {
      std::string header = NpyHeader(m);
      uint64_t size = header.size() + m.nbytes;
      if (size >= 0xFFFFFFFFull || offset >= 0xFFFFFFFFull) {
        throw Error("output '" + m.name + "' does not fit an .npz archive without zip64 (4 GiB)");
      }
      uint32_t crc = Crc32(Crc32(0, header.data(), header.size()), m.data, m.nbytes);
      std::string name = m.name + ".npy";
      std::string fields;  // shared by the local and central headers
      PutLittle(fields, 20, 2);      // version needed: 2.0
      PutLittle(fields, 0, 2);       // flags
      PutLittle(fields, 0, 2);       // method: stored
      PutLittle(fields, 0, 2);       // time
      PutLittle(fields, 0x21, 2);    // date: 1980-01-01
      PutLittle(fields, crc, 4);
      PutLittle(fields, size, 4);    // compressed
      PutLittle(fields, size, 4);    // uncompressed
      PutLittle(fields, name.size(), 2);
      PutLittle(fields, 0, 2);       // extra length
      std::string local;
      PutLittle(local, 0x04034b50, 4);
      local += fields + name;
      uint64_t local_offset = offset;
      put(local.data(), local.size());
      put(header.data(), header.size());
      put(m.data, m.nbytes);
      PutLittle(directory, 0x02014b50, 4);
      PutLittle(directory, 20, 2);  // version made by
      directory += fields;
      PutLittle(directory, 0, 2);   // comment length
      PutLittle(directory, 0, 2);   // disk
      PutLittle(directory, 0, 2);   // internal attributes
      PutLittle(directory, 0, 4);   // external attributes
      PutLittle(directory, local_offset, 4);
      directory += name;
    }
    if (offset >= 0xFFFFFFFFull) {
      throw Error("outputs do not fit an .npz archive without zip64 (4 GiB)");
    }
    std::string end;
    PutLittle(end, 0x06054b50, 4);
    PutLittle(end, 0, 4);  // disk numbers
    PutLittle(end, members.size(), 2);
    PutLittle(end, members.size(), 2);
    PutLittle(end, directory.size(), 4);
    PutLittle(end, offset, 4);
    PutLittle(end, 0, 2);  // comment length
    put(directory.data(), directory.size());
    put(end.data(), end.size());
    if (std::fflush(f.get()) != 0) throw Error("cannot write '" + path + "'");
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string reason = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error("cannot write '" + path + "': " + reason);
  }
}

}  // namespace npy
