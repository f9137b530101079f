/**
 * Batch systems as objects: what differs between a SLURM cluster and an
 * HTCondor pool when pilots are submitted, found and cancelled. Adding one
 * (PBS, LSF) is one more file here and its templates.
 */
import {htcondor} from './htcondor.js'
import {slurm} from './slurm.js'
import type {BatchKind, BatchSystem} from './system.js'

export {batchJobName, type BatchKind, type BatchSystem} from './system.js'

const SYSTEMS: Record<BatchKind, BatchSystem> = {slurm, htcondor}

export function batchSystem(kind: BatchKind): BatchSystem {
  return SYSTEMS[kind]
}
