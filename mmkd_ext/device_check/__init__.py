"""Device checks that need no GPU: a training step's forward on fake CUDA tensors (issue 23)."""
from .fake_cuda import FakeCudaDeviceError, FakeCudaReport, fake_cuda_copy, fake_cuda_train_step
from .hook import RECORDS, FakeCudaCheckHook, coverage_line, coverage_report, read_records

__all__ = ['FakeCudaDeviceError', 'FakeCudaReport', 'fake_cuda_copy', 'fake_cuda_train_step', 'FakeCudaCheckHook',
           'RECORDS', 'coverage_line', 'coverage_report', 'read_records']
