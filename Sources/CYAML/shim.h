#ifndef SENSORFLEET_CYAML_SHIM_H
#define SENSORFLEET_CYAML_SHIM_H

// libyaml (libyaml-dev): the YAML 1.1 parser the fleet files are read with. Only its event parser
// is used (yaml_parser_parse); Sources/SensorFleetCore/Config/YAML builds the node tree from the events.
#include <yaml.h>

#endif
