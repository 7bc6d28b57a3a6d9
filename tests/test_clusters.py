"""Butina clusters for cluster_cv: the same clusters as RDKit's Butina.ClusterData on 1,024-bit ECFP4."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator
from rdkit.ML.Cluster import Butina

from chemlm.clusters import CLUSTER_BITS, DISTANCE_CUTOFF, butina, fold_bits, neighbours
from helpers import REPO


def test_clusters_match_rdkit_butina_on_folded_ecfp4():
    smiles = pd.read_csv(REPO / "resources" / "demo" / "hiv_sample.csv.gz")["smiles"].tolist()[:400]
    molecules = [molecule for molecule in map(Chem.MolFromSmiles, smiles) if molecule is not None]
    wide = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    narrow = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=CLUSTER_BITS)
    bits = np.array([wide.GetFingerprintAsNumPy(molecule) for molecule in molecules])
    assert (fold_bits(bits) == np.array([narrow.GetFingerprintAsNumPy(molecule) for molecule in molecules])).all()
    fingerprints = [narrow.GetFingerprint(molecule) for molecule in molecules]
    distances = []
    for index in range(1, len(fingerprints)):
        distances.extend(1 - np.array(DataStructs.BulkTanimotoSimilarity(fingerprints[index], fingerprints[:index])))
    expected = Butina.ClusterData(distances, len(fingerprints), DISTANCE_CUTOFF, isDistData=True)
    ours = butina(neighbours(fold_bits(bits)))
    assert ours.max() + 1 == len(expected) and len(expected) < len(molecules)
    for cluster, members in enumerate(expected):
        assert (ours[list(members)] == cluster).all()


def test_the_cluster_rule_writes_one_cluster_per_molecule_in_molecules_order(tmp_path):
    from chemlm.clusters import write_clusters
    from chemlm.fingerprints import write_ecfp4

    smiles = ["c1ccccc1O", "c1ccccc1N", "c1ccccc1C", "CCCCCCCC(=O)O", "CCCCCCCCC(=O)O", "C1CCNCC1"]
    pd.DataFrame({"mol_id": [f"m{i}" for i in range(len(smiles))], "smiles": smiles}).to_csv(tmp_path / "molecules.csv", index=False)
    write_ecfp4(tmp_path / "molecules.csv", tmp_path / "ecfp4.npz")
    write_clusters(tmp_path / "molecules.csv", tmp_path / "ecfp4.npz", tmp_path / "clusters.csv")
    clusters = pd.read_csv(tmp_path / "clusters.csv", dtype={"mol_id": str})
    assert clusters["mol_id"].tolist() == [f"m{i}" for i in range(len(smiles))]
    assert clusters["cluster"].nunique() < len(smiles)  # the fatty acids (at least) share a cluster
    assert clusters.loc[3, "cluster"] == clusters.loc[4, "cluster"]
