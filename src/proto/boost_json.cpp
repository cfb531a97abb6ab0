// The one translation unit that compiles Boost.JSON (header-only mode, linked once).
#include <boost/json/src.hpp>
