"""Closing the loop: measured kernels -> fitted efficiency curves -> validated, projected predictions.

  measure_cpu   time torch operators on this CPU (the CPU is a device like any GPU)
  data          measurement rows -> chip (catalog or measured CPU peaks), operators, held-out split
  fit           the efficiency curve per operator class (parametric + log-space residual smoothing)
  validate      fit on the training split, held-out error next to roofline and the analytical stack
  profile       the profile file and the `Efficiency` it becomes (`load_profile`, fidelity calibrated)
  project       carrying a profile to an unmeasured chip, with an uncertainty band (`predict_band`)
  plots         predicted-vs-measured and roofline figures
  cli           `accelsim measure`, `accelsim calibrate`

Submodules import numpy/scipy/plotly/torch as they need them; importing this package is free.
"""
