// Placeholder until hearth synth lands.
