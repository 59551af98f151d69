#include "signal/npy.h"

#include <Eigen/Core>
#include <cstring>
#include <fstream>
#include <sstream>

namespace reinit {

namespace {

// The value of `key` in the header dict, as its raw text up to the next top-level ',' or '}'.
bool DictValue(const std::string& header, const std::string& key, std::string* value) {
  const std::string quoted[] = {"'" + key + "'", "\"" + key + "\""};
  size_t at = std::string::npos;
  for (const auto& q : quoted) {
    at = header.find(q);
    if (at != std::string::npos) {
      at += q.size();
      break;
    }
  }
  if (at == std::string::npos) return false;
  at = header.find(':', at);
  if (at == std::string::npos) return false;
  ++at;
  int depth = 0;
  size_t end = at;
  for (; end < header.size(); ++end) {
    const char c = header[end];
    if (c == '(' || c == '[') ++depth;
    if (c == ')' || c == ']') --depth;
    if (depth < 0 || (depth == 0 && (c == ',' || c == '}'))) break;
  }
  *value = header.substr(at, end - at);
  // Trim.
  const size_t first = value->find_first_not_of(" \t");
  const size_t last = value->find_last_not_of(" \t");
  *value = first == std::string::npos ? "" : value->substr(first, last - first + 1);
  return true;
}

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

Status NotNpy(const std::string& path, const std::string& why) {
  return ModelError("'" + path + "' is not a .npy file reinit reads: " + why);
}

// What a .npy header says of the data: the dtype (e.g. "<f4": kind 'f', width 4 bytes), the
// shape and the element count.
struct NpyLayout {
  std::string dtype;
  char kind = '?';
  int width = 0;
  std::vector<int64_t> shape;
  int64_t count = 1;
};

// The header dict's text, after the magic and the version's header length; `data` is set to
// where the data starts.
StatusOr<std::string> NpyHeaderText(const std::string& bytes, const std::string& path,
                                    size_t* data) {
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) {
    return NotNpy(path, "no \\x93NUMPY magic");
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) |
                 (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return NotNpy(path, "truncated header");
    header_len = Load<uint32_t>(bytes.data() + 8);
    start = 12;
  } else {
    return NotNpy(path, "format version " + std::to_string(major));
  }
  if (start + header_len > bytes.size()) return NotNpy(path, "truncated header");
  *data = start + header_len;
  return bytes.substr(start, header_len);
}

// The dtype of `descr` ("'<f4'"): little-endian or byte-order free floats of 2, 4 or 8 bytes,
// integers of 1, 2, 4 or 8 bytes, or bools.
Status ParseNpyDtype(const std::string& descr, const std::string& path, NpyLayout* layout) {
  if (descr.size() < 5 || (descr.front() != '\'' && descr.front() != '"')) {
    return NotNpy(path, "dtype " + descr);
  }
  const std::string dtype = descr.substr(1, descr.size() - 2);  // e.g. <f4
  const char order = dtype[0];
  const char kind = dtype.size() > 1 ? dtype[1] : '?';
  const int width = dtype.size() > 2 ? std::atoi(dtype.c_str() + 2) : 0;
  if (order == '>') return NotNpy(path, "big-endian data (" + dtype + ")");
  const bool known =
      (kind == 'f' && (width == 2 || width == 4 || width == 8)) ||
      ((kind == 'i' || kind == 'u') && (width == 1 || width == 2 || width == 4 || width == 8)) ||
      (kind == 'b' && width == 1);
  if ((order != '<' && order != '|' && order != '=') || !known) {
    return NotNpy(path, "dtype " + dtype);
  }
  layout->dtype = dtype;
  layout->kind = kind;
  layout->width = width;
  return Status::Ok();
}

// The shape of `shape_text` ("(2, 3)", "(5,)" or "()") and its element count, each dim and the
// count at most 2^40.
Status ParseNpyShape(const std::string& shape_text, const std::string& path, NpyLayout* layout) {
  if (shape_text.size() < 2 || shape_text.front() != '(' || shape_text.back() != ')') {
    return NotNpy(path, "shape " + shape_text);
  }
  std::stringstream dims(shape_text.substr(1, shape_text.size() - 2));
  for (std::string item; std::getline(dims, item, ',');) {
    const size_t f = item.find_first_not_of(" ");
    if (f == std::string::npos) continue;
    char* end = nullptr;
    const long long d = std::strtoll(item.c_str() + f, &end, 10);
    if (end == item.c_str() + f || d < 0 || d > (int64_t{1} << 40)) {
      return NotNpy(path, "shape " + shape_text);
    }
    layout->shape.push_back(d);
  }
  int64_t count = 1;
  for (int64_t d : layout->shape) {
    if (d != 0 && count > (int64_t{1} << 40) / d) return NotNpy(path, "shape " + shape_text);
    count *= d;
  }
  layout->count = count;
  return Status::Ok();
}

// Float data (2, 4 or 8 bytes an element) from `p` into t->f.
void DecodeNpyFloats(const char* p, const NpyLayout& layout, exec::Tensor* t) {
  const int width = layout.width;
  t->type = exec::DType::kFloat;
  t->f.resize(static_cast<size_t>(layout.count));
  for (size_t k = 0; k < t->f.size(); ++k, p += width) {
    t->f[k] = width == 4 ? Load<float>(p)
              : width == 8
                  ? static_cast<float>(Load<double>(p))
                  : static_cast<float>(Eigen::numext::bit_cast<Eigen::half>(Load<uint16_t>(p)));
  }
}

// Integer or bool data from `p` into t->i.
void DecodeNpyIntegers(const char* p, const NpyLayout& layout, exec::Tensor* t) {
  const char kind = layout.kind;
  const int width = layout.width;
  t->type = kind == 'b' ? exec::DType::kBool : exec::DType::kInt64;
  t->i.resize(static_cast<size_t>(layout.count));
  for (size_t k = 0; k < t->i.size(); ++k, p += width) {
    int64_t v = 0;
    switch (width) {
      case 1:
        v = kind == 'i' ? Load<int8_t>(p) : Load<uint8_t>(p);
        break;
      case 2:
        v = kind == 'i' ? Load<int16_t>(p) : Load<uint16_t>(p);
        break;
      case 4:
        v = kind == 'i' ? Load<int32_t>(p) : Load<uint32_t>(p);
        break;
      default:
        v = Load<int64_t>(p);
    }
    t->i[k] = kind == 'b' ? v != 0 : v;
  }
}

}  // namespace

StatusOr<exec::Tensor> ParseNpy(const std::string& bytes, const std::string& path) {
  size_t data = 0;
  auto header = NpyHeaderText(bytes, path, &data);
  if (!header.ok()) return header.status();
  std::string descr, fortran, shape_text;
  if (!DictValue(*header, "descr", &descr) || !DictValue(*header, "fortran_order", &fortran) ||
      !DictValue(*header, "shape", &shape_text)) {
    return NotNpy(path, "the header lacks descr, fortran_order or shape");
  }
  if (fortran != "False") return NotNpy(path, "Fortran order (save it with np.ascontiguousarray)");
  NpyLayout layout;
  REINIT_RETURN_IF_ERROR(ParseNpyDtype(descr, path, &layout));
  REINIT_RETURN_IF_ERROR(ParseNpyShape(shape_text, path, &layout));
  if (bytes.size() - data !=
      static_cast<size_t>(layout.count) * static_cast<size_t>(layout.width)) {
    return NotNpy(path, "it holds " + std::to_string(bytes.size() - data) +
                            " bytes of data; shape " + shape_text + " of " + layout.dtype +
                            " needs " + std::to_string(layout.count * layout.width));
  }
  exec::Tensor t;
  t.shape = layout.shape;
  const char* p = bytes.data() + data;
  if (layout.kind == 'f') {
    DecodeNpyFloats(p, layout, &t);
  } else {
    DecodeNpyIntegers(p, layout, &t);
  }
  return t;
}

StatusOr<exec::Tensor> ReadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("cannot open '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return IoError("cannot read '" + path + "'");
  return ParseNpy(ss.str(), path);
}

}  // namespace reinit
